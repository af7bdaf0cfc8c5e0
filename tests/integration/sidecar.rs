//! Sidecar mode: fedsync beside a Corteza instance, reading and writing its
//! records through the compose REST API. Corteza here is the HTTP-level
//! fake of `common::fake_corteza`, answering with payloads recorded from a
//! real Corteza server (see its doc comment for how they were recorded);
//! the peers are real fedsync daemons on loopback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::fake_corteza::FakeCorteza;
use crate::common::fake_peer::fixture;
use crate::common::{
    TestDaemon, cli_json, http, pair, run_cli, spawn_node, spawn_node_with, stderr, stdout,
};
use crate::data::{account_file, create_account, records, share_account};

pub(crate) const TOKEN: &str = "corteza-token-one";

pub(crate) fn token_file(dir: &Path, token: &str) -> PathBuf {
    let path = dir.join("corteza-token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    path
}

/// A fedsync node whose data plane is `corteza`'s namespace `namespace`.
async fn sidecar(label: &str, corteza_url: &str, token: &Path, namespace: &str) -> TestDaemon {
    sidecar_with(label, corteza_url, token, namespace, |_| {}).await
}

pub(crate) async fn sidecar_with(
    label: &str,
    corteza_url: &str,
    token: &Path,
    namespace: &str,
    extra: impl FnOnce(&mut fedsync::config::Overrides),
) -> TestDaemon {
    let (url, token, namespace) = (
        corteza_url.to_owned(),
        token.display().to_string(),
        namespace.to_owned(),
    );
    spawn_node_with(label, move |o| {
        o.set("local.kind", "corteza")
            .set("local.corteza_url", url)
            .set("local.corteza_token_file", token)
            .set("local.corteza_namespace", namespace)
            .set("local.corteza_requests_per_second", 1000)
            // Lists of more than two span pages (Corteza's nextPage).
            .set("local.corteza_page_size", 2);
        extra(o);
    })
    .await
}

pub(crate) fn body(name: &str) -> Value {
    fixture(name)["request"]["body"].clone()
}

/// Corteza A as recorded (013-017): namespace `fedsrc`, module `contact`
/// with six fields, Alice, Bob and Carol. Returns (module id, record ids).
pub(crate) fn recorded_source(fake: &FakeCorteza) -> (String, Vec<String>) {
    let ns = fake.add_namespace("Fed Source", "fedsrc");
    let module = fake.add_module(&ns, &body("014-A-compose-create-module.json"));
    let ids = [
        "015-A-compose-create-record-1.json",
        "016-A-compose-create-record-2.json",
        "017-A-compose-create-record-3.json",
    ]
    .iter()
    .map(|f| fake.add_record(&module, &body(f)))
    .collect();
    (module, ids)
}

/// Live records of an embedded module as name -> values.
pub(crate) async fn live(d: &TestDaemon, module: &str, name: &str) -> BTreeMap<String, Value> {
    records(d, module, false)
        .await
        .into_iter()
        .map(|r| {
            (
                r["values"][name].as_str().unwrap().to_owned(),
                r["values"].clone(),
            )
        })
        .collect()
}

/// Corteza records (as the fake holds them) as name -> (values, meta, deleted).
fn in_corteza(fake: &FakeCorteza, module: &str, name: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in fake.records(module) {
        let mut values: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for v in r["values"].as_array().unwrap() {
            values
                .entry(v["name"].as_str().unwrap().to_owned())
                .or_default()
                .push(v["value"].clone());
        }
        let key = values[name][0].as_str().unwrap().to_owned();
        let entry = json!({"values": values, "meta": r["meta"], "deleted": !r["deletedAt"].is_null(), "revision": r["revision"], "id": r["recordID"]});
        assert!(
            out.insert(key.clone(), entry).is_none(),
            "two Corteza records {key}"
        );
    }
    out
}

/// `origin` exposes `module`'s `fields` to `dest`, which pulls the
/// structure and maps the shared `contact` into its module `to` with
/// `pairs` (`origin=destination`).
#[allow(clippy::too_many_arguments)]
async fn share_contact(
    origin: &TestDaemon,
    dest: &TestDaemon,
    origin_node: u64,
    dest_node: u64,
    module: &str,
    fields: &[&str],
    to: &str,
    pairs: &[&str],
) {
    let origin_node = origin_node.to_string();
    let mut expose = vec!["expose", "add", &origin_node, module];
    for f in fields {
        expose.extend(["--field", f]);
    }
    cli_json(origin, &expose).await;
    let dest_node = dest_node.to_string();
    let run = cli_json(dest, &["sync", "now", &dest_node, "--kind", "structure"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let mut map = vec!["map", "set", &dest_node, "contact", "--to", to];
    for p in pairs {
        map.extend(["--field", p]);
    }
    let mapping = cli_json(dest, &map).await;
    assert_eq!(mapping["status"], "ok", "{mapping}");
}

/// Pairs `origin` with `dest`, which maps the `name` of `module` into its
/// new embedded module `Person` (`Name`). Returns the origin's node id on
/// `dest`.
pub(crate) async fn share_names(origin: &TestDaemon, dest: &TestDaemon, module: &str) -> u64 {
    let (origin_node, dest_node) = pair(origin, dest).await;
    cli_json(
        dest,
        &[
            "module",
            "create",
            "--handle",
            "Person",
            "--field",
            "Name:String",
        ],
    )
    .await;
    share_contact(
        origin,
        dest,
        origin_node,
        dest_node,
        module,
        &["name"],
        "Person",
        &["name=Name"],
    )
    .await;
    dest_node
}

/// Runs a data sync; its run, succeeded or failed.
async fn sync_data(d: &TestDaemon, node: u64) -> Value {
    let dir = d.data_dir.display().to_string();
    let node = node.to_string();
    let out = run_cli(&[
        "sync",
        "now",
        &node,
        "--kind",
        "data",
        "--data-dir",
        &dir,
        "--json",
    ])
    .await;
    let runs: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), stderr(&out)));
    let run = runs.as_array().unwrap()[0].clone();
    assert_eq!(
        out.status.success(),
        run["status"] == "succeeded",
        "the exit status follows the run: {run}"
    );
    run
}

#[tokio::test]
async fn a_corteza_module_is_exposed_to_a_second_fedsync_which_receives_its_records_and_changes() {
    let fake = FakeCorteza::start(TOKEN).await;
    let (module, ids) = recorded_source(&fake);
    let dir = tempfile::tempdir().unwrap();
    let a = sidecar(
        "a",
        &fake.api_url(),
        &token_file(dir.path(), TOKEN),
        "fedsrc",
    )
    .await;
    let b = spawn_node("b").await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;

    // The CLI names Corteza modules as namespace/module.
    let listed = cli_json(&a, &["module", "list"]).await;
    assert!(listed.to_string().contains("\"contact\""), "{listed}");
    let a_dir = a.data_dir.display().to_string();
    let wrong = run_cli(&[
        "expose",
        "add",
        &a_for_b.to_string(),
        "other/contact",
        "--field",
        "name",
        "--data-dir",
        &a_dir,
    ])
    .await;
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("namespace `fedsrc`"),
        "{}",
        stderr(&wrong)
    );
    cli_json(
        &b,
        &[
            "module",
            "create",
            "--handle",
            "Person",
            "--field",
            "Name:String",
            "--field",
            "Mail:Email",
            "--field",
            "Tags:String:multi",
            "--field",
            "Vip:Bool",
        ],
    )
    .await;
    share_contact(
        &a,
        &b,
        a_for_b,
        b_for_a,
        "fedsrc/contact",
        &["name", "email", "tags", "vip"],
        "Person",
        &["name=Name", "email=Mail", "tags=Tags", "vip=Vip"],
    )
    .await;

    let run = sync_data(&b, b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let on_b = live(&b, "Person", "Name").await;
    assert_eq!(on_b.keys().collect::<Vec<_>>(), ["Alice", "Bob", "Carol"]);
    assert_eq!(on_b["Alice"]["Tags"], json!(["red", "blue"]));
    assert_eq!(on_b["Alice"]["Mail"], json!("alice@example.org"));
    assert_eq!(on_b["Alice"]["Vip"], json!("1"));
    // Fields that were not exposed never left Corteza's side.
    assert!(!on_b.values().any(|v| v.to_string().contains("s-alice")));
    // The records were read through the compose API, with the token.
    let lists: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| {
            s.method == "GET"
                && s.path
                    == format!(
                        "/api/compose/namespace/{}/module/{module}/record/",
                        fake.modules()[0]["namespaceID"].as_str().unwrap()
                    )
        })
        .collect();
    assert!(!lists.is_empty(), "fedsync listed Corteza's records");
    assert!(
        lists.iter().all(|s| s.query.contains("deleted=1")),
        "{lists:?}"
    );
    assert!(
        lists.iter().all(|s| s.query.contains("limit=2")),
        "{lists:?}"
    );
    assert!(
        lists.iter().any(|s| s.query.contains("pageCursor=")),
        "three records in pages of two: {lists:?}"
    );

    // Corteza's operator changes things (recorded 107-109).
    fake.update_record(&ids[1], &body("107-A-compose-update-record-bob.json"));
    fake.delete_record(&ids[2]);
    fake.add_record(&module, &body("109-A-compose-create-record-dave.json"));
    let run = sync_data(&b, b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let on_b = live(&b, "Person", "Name").await;
    assert_eq!(
        on_b.keys().collect::<Vec<_>>(),
        ["Alice", "Bob Updated", "Dave"]
    );
    assert_eq!(on_b["Bob Updated"]["Tags"], json!(["green", "yellow"]));
    // The second run asked only for what changed since the first.
    let last = fake
        .seen()
        .into_iter()
        .rev()
        .find(|s| s.path.ends_with("/record/"))
        .unwrap();
    assert!(
        last.query.contains("query=") && !last.query.contains("1970"),
        "an incremental list: {last:?}"
    );
    let gone = records(&b, "Person", true).await;
    assert!(
        gone.iter()
            .any(|r| r["values"]["Name"] == json!("Carol") && !r["deletedAt"].is_null()),
        "{gone:?}"
    );
}

#[tokio::test]
async fn records_from_a_peer_become_corteza_records_that_carry_their_origin_and_are_never_made_twice()
 {
    let fake = FakeCorteza::start(TOKEN).await;
    let ns = fake.add_namespace("Fed Destination", "feddst");
    let dir = tempfile::tempdir().unwrap();
    let a = spawn_node("a").await;
    // Pages of 10: a first pull of 25 records writes three batches.
    let b = sidecar_with(
        "b",
        &fake.api_url(),
        &token_file(dir.path(), TOKEN),
        &ns,
        |o| {
            o.set("sync.data_page_size", 10);
        },
    )
    .await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    // B's `Contact` is made in Corteza by fedsync's module create.
    share_account(&a, &b, a_for_b, b_for_a).await;
    let contact = fake
        .modules()
        .into_iter()
        .find(|m| m["handle"] == "Contact")
        .expect("fedsync made the module in Corteza");
    let contact = contact["moduleID"].as_str().unwrap().to_owned();
    let file = account_file(dir.path(), 25);
    cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;

    // Before making records, one count of the peer's records in Corteza
    // (0, as there are no links) for the run's three batches: none is
    // looked up by its meta first.
    let lookups = |fake: &FakeCorteza| {
        let seen = fake.seen();
        let by_origin = seen
            .iter()
            .filter(|s| s.query.contains("meta=federation_extrecord%3D"))
            .count();
        let counts = seen
            .iter()
            .filter(|s| {
                s.query.contains("meta=fedsync_node%3D") && s.query.contains("incTotal=true")
            })
            .count();
        (by_origin, counts)
    };
    let run = sync_data(&b, b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["created"], 25, "{run}");
    assert_eq!(lookups(&fake), (0, 1));
    let held = in_corteza(&fake, &contact, "FullName");
    assert_eq!(held.len(), 25);
    let on_a: BTreeMap<String, Value> = records(&a, "Account", false)
        .await
        .into_iter()
        .map(|r| (r["values"]["Name"].as_str().unwrap().to_owned(), r))
        .collect();
    for (name, r) in &held {
        let origin = &on_a[name];
        assert_eq!(r["values"]["Labels"], origin["values"]["Tags"], "{name}");
        assert_eq!(r["meta"]["federation_extrecord"], origin["id"], "{name}");
        assert_eq!(
            r["meta"]["fedsync_node"],
            json!(b_for_a.to_string()),
            "{name}"
        );
        assert_eq!(r["meta"]["federation"], json!(a.base_url()), "{name}");
    }

    // Again: nothing new, nothing doubled.
    let run = sync_data(&b, b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(in_corteza(&fake, &contact, "FullName").len(), 25);

    // A full pull over linked records reads them from Corteza by one list
    // query per page (of 10 here), module and hundred ids, not one GET
    // each; a Corteza that refuses such a query gets the GETs.
    let record_reads = |fake: &FakeCorteza| {
        let seen = fake.seen();
        let gets = seen
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("/record/") && !s.path.ends_with('/'))
            .count();
        let by_ids = seen
            .iter()
            .filter(|s| s.query.contains("query=%28id+%3D+"))
            .count();
        (gets, by_ids)
    };
    for refused in [false, true] {
        if refused {
            fake.refuse_id_queries();
        }
        let (gets, by_ids) = record_reads(&fake);
        let reset = cli_json(&b, &["sync", "reset", &b_for_a.to_string()]).await;
        let run = &reset.as_array().unwrap()[0];
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["skipped"], 25, "{run}");
        assert_eq!(in_corteza(&fake, &contact, "FullName").len(), 25);
        let (gets_now, by_ids_now) = record_reads(&fake);
        if refused {
            assert_eq!(gets_now - gets, 25, "one GET a record");
        } else {
            assert_eq!((gets_now - gets, by_ids_now - by_ids), (0, 3));
        }
    }

    // A's changes reach Corteza: an update is a new revision of the same
    // Corteza record, a removal Corteza's soft delete.
    let one = on_a["n00001"]["id"].as_str().unwrap().to_owned();
    let two = on_a["n00002"]["id"].as_str().unwrap().to_owned();
    cli_json(
        &a,
        &["record", "update", "Account", &one, "--value", "Tags=x"],
    )
    .await;
    cli_json(&a, &["record", "rm", "Account", &two]).await;
    let run = sync_data(&b, b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let now_held = in_corteza(&fake, &contact, "FullName");
    assert_eq!(now_held["n00001"]["values"]["Labels"], json!(["x"]));
    assert_eq!(now_held["n00001"]["id"], held["n00001"]["id"]);
    assert_eq!(now_held["n00001"]["revision"], json!(2));
    assert_eq!(now_held["n00002"]["deleted"], json!(true));

    // 20 new records come in two pages of 10; Corteza fails the 16th
    // create: the run fails with the second batch's first 5 records in
    // Corteza and their links never written. The next run counts again (a
    // run of the job failed), finds the counts differ and looks up each
    // new record of the page it pulls again: none is made twice.
    let more = dir.path().join("more.jsonl");
    let lines: Vec<String> = (0..20)
        .map(|i| json!({"Name": format!("m{i:02}"), "Tags": ["more"]}).to_string())
        .collect();
    std::fs::write(&more, lines.join("\n")).unwrap();
    cli_json(&a, &["record", "import", "Account", more.to_str().unwrap()]).await;
    fake.fail_creates_after(Some(15));
    let run = sync_data(&b, b_for_a).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(in_corteza(&fake, &contact, "FullName").len(), 40);
    fake.fail_creates_after(None);
    let (by_origin, counts) = lookups(&fake);
    let run = sync_data(&b, b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let after = in_corteza(&fake, &contact, "FullName");
    assert_eq!(after.len(), 45, "no record made twice");
    assert_eq!(lookups(&fake), (by_origin + 10, counts + 1));
    // Then: one count (equal now), no lookup; and after a run that
    // succeeded, neither.
    for (name, recount) in [("x1", 1), ("x2", 0)] {
        create_account(&a, name).await;
        let (by_origin, counts) = lookups(&fake);
        let run = sync_data(&b, b_for_a).await;
        assert_eq!(run["created"], 1, "{run}");
        assert_eq!(lookups(&fake), (by_origin, counts + recount), "{name}");
    }
}

#[tokio::test]
async fn a_daemon_started_before_corteza_waits_not_ready_then_becomes_ready() {
    // A port Corteza will listen on, free for now.
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/api");
    // Peers must be https and public; Corteza beside us is neither, and
    // that is fine: the peer rules do not apply to it.
    let a = sidecar_with("a", &url, &token_file(dir.path(), TOKEN), "fedsrc", |o| {
        o.set("federation.allow_insecure_peers", false)
            .set("federation.public_url", "https://a.example.com/federation");
    })
    .await;
    let ready = http()
        .get(a.federation_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let text = ready.text().await.unwrap();
    assert!(text.contains("cannot reach Corteza at"), "{text}");
    assert!(!text.contains(TOKEN));
    // The daemon serves its admin interface meanwhile.
    cli_json(&a, &["node", "list"]).await;

    let fake = FakeCorteza::start_on(addr, TOKEN).await;
    recorded_source(&fake);
    let ready = http()
        .get(a.federation_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
}

#[tokio::test]
async fn a_rotated_token_file_is_used_without_a_restart() {
    let fake = FakeCorteza::start(TOKEN).await;
    recorded_source(&fake);
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), TOKEN);
    let a = sidecar("a", &fake.api_url(), &file, "fedsrc").await;
    let ready = http()
        .get(a.federation_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // Corteza now takes only the new token: refused until the file has it.
    fake.accept_only("corteza-token-two");
    let ready = http()
        .get(a.federation_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let text = ready.text().await.unwrap();
    assert!(text.contains("does not accept the token"), "{text}");
    // As Kubernetes updates a Secret volume: a new file swapped in.
    let next = dir.path().join("corteza-token.new");
    std::fs::write(&next, "corteza-token-two\n").unwrap();
    std::fs::rename(&next, &file).unwrap();
    let ready = http()
        .get(a.federation_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let auth: Vec<_> = fake.seen();
    assert!(!auth.is_empty());
}

#[tokio::test]
async fn corteza_outages_are_retried_and_refusals_stop_with_cortezas_message() {
    let fake = FakeCorteza::start(TOKEN).await;
    let (module, _) = recorded_source(&fake);
    let dir = tempfile::tempdir().unwrap();
    let a = sidecar(
        "a",
        &fake.api_url(),
        &token_file(dir.path(), TOKEN),
        "fedsrc",
    )
    .await;
    let b = spawn_node("b").await;
    let b_for_a = share_names(&a, &b, "contact").await;

    let ns = fake.modules()[0]["namespaceID"]
        .as_str()
        .unwrap()
        .to_owned();
    let records_path = format!("/api/compose/namespace/{ns}/module/{module}/record/");
    // Corteza is down (503): A answers B with a retriable error, B retries later.
    fake.outage(&records_path, 503);
    let run = sync_data(&b, b_for_a).await;
    assert_eq!(run["status"], "failed", "{run}");
    // A tells its peer only that it cannot serve now, not about its Corteza.
    assert!(run["error"].as_str().unwrap().contains("HTTP 503"), "{run}");
    let jobs = cli_json(&b, &["sync", "status", &b_for_a.to_string()]).await;
    assert!(jobs.to_string().contains("retrying"), "{jobs}");
    fake.end_outages();
    let run = sync_data(&b, b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(live(&b, "Person", "Name").await.len(), 3);

    // B as a sidecar: its Corteza refuses the write; the run says why.
    let fake_b = FakeCorteza::start(TOKEN).await;
    let ns_b = fake_b.add_namespace("Fed Destination", "feddst");
    let target = fake_b.add_module(&ns_b, &body("038-B-compose-create-module.json"));
    let c = sidecar(
        "c",
        &fake_b.api_url(),
        &token_file(dir.path(), TOKEN),
        "feddst",
    )
    .await;
    let (a_for_c, c_for_a) = pair(&a, &c).await;
    share_contact(
        &a,
        &c,
        a_for_c,
        c_for_a,
        "contact",
        &["name"],
        "feddst/contact_copy",
        &["name=full_name"],
    )
    .await;
    fake_b.forbid(&format!(
        "/api/compose/namespace/{ns_b}/module/{target}/record/"
    ));
    let run = sync_data(&c, c_for_a).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run.to_string().contains("not allowed to read records"),
        "{run}"
    );
    assert!(fake_b.records(&target).is_empty());
    fake_b.allow_all();
    let run = sync_data(&c, c_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(fake_b.records(&target).len(), 3);
}

/// Sidecar A beside `fake` (Corteza pages of 20) shares `fedsrc/contact`'s
/// names with embedded B (pages of 50), which pulls them: B, its data run,
/// the Corteza records listed meanwhile, and A with its token's directory.
async fn pull_contacts(
    fake: &FakeCorteza,
) -> (TestDaemon, Value, usize, (TestDaemon, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let a = sidecar_with(
        "a",
        &fake.api_url(),
        &token_file(dir.path(), TOKEN),
        "fedsrc",
        |o| {
            o.set("local.corteza_page_size", 20);
        },
    )
    .await;
    let b = spawn_node_with("b", |o| {
        o.set("sync.data_page_size", 50);
    })
    .await;
    let b_for_a = share_names(&a, &b, "fedsrc/contact").await;
    let before = fake.listed();
    let run = sync_data(&b, b_for_a).await;
    let read = fake.listed() - before;
    (b, run, read, (a, dir))
}

/// A first pull of a large Corteza module reads each Corteza record about
/// once per list it is in (created, updated, deleted), not every record
/// changed since each page's cursor.
#[tokio::test]
async fn a_first_pull_of_a_large_corteza_module_reads_each_record_about_once() {
    let fake = FakeCorteza::start(TOKEN).await;
    let ns = fake.add_namespace("Fed Source", "fedsrc");
    let module = fake.add_module(&ns, &body("014-A-compose-create-module.json"));
    let template = body("015-A-compose-create-record-1.json");
    let ids: Vec<String> = (0..600)
        .map(|i| {
            let mut record = template.clone();
            record["values"][0]["value"] = json!(format!("P{i:03}"));
            fake.add_record(&module, &record)
        })
        .collect();
    for id in ids.iter().step_by(3) {
        fake.update_record(id, &body("107-A-compose-update-record-bob.json"));
    }
    for id in ids.iter().skip(1).step_by(10) {
        fake.delete_record(id);
    }
    let (b, run, read, _a) = pull_contacts(&fake).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // 107's update renames every third record to "Bob Updated"; every
    // tenth is deleted (20 of them renamed first).
    let live = records(&b, "Person", false).await;
    let named = |name: &str| {
        live.iter()
            .filter(|r| r["values"]["Name"] == json!(name))
            .count()
    };
    assert_eq!(live.len(), 600 - 60);
    assert_eq!(named("Bob Updated"), 200 - 20);
    assert_eq!(named("P001"), 0, "deleted");
    assert_eq!(named("P002"), 1);
    // The three lists hold 600 + 200 + 60 entries; each of the 12 pages
    // served reads up to a Corteza page (20) of each list past what it
    // serves, and the total on the first page is one pass over the 600.
    // Every record changed since each page's cursor would be about
    // 600 + 550 + ... + 50 = 3,900.
    let bound = 860 + 13 * 3 * 20 + 600;
    assert!(read <= bound, "read {read} Corteza records (bound {bound})");
}

/// A bulk import fills one Corteza second with many pages of records: each
/// page goes on after the id it stopped at in that second instead of
/// reading the second again; a Corteza that refuses that query is read by
/// whole seconds, every record still served once.
#[tokio::test]
async fn a_second_holding_many_pages_of_records_is_read_about_once() {
    let mut reads = Vec::new();
    for refused in [false, true] {
        let fake = FakeCorteza::start(TOKEN).await;
        if refused {
            fake.refuse_id_continuation();
        }
        let ns = fake.add_namespace("Fed Source", "fedsrc");
        let module = fake.add_module(&ns, &body("014-A-compose-create-module.json"));
        let template = body("015-A-compose-create-record-1.json");
        fake.hold_clock(true);
        for i in 0..600 {
            let mut record = template.clone();
            record["values"][0]["value"] = json!(format!("P{i:03}"));
            fake.add_record(&module, &record);
        }
        fake.hold_clock(false);
        let (b, run, read, _a) = pull_contacts(&fake).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["pages"], 12, "{run}");
        let names: std::collections::BTreeSet<String> = records(&b, "Person", false)
            .await
            .into_iter()
            .map(|r| r["values"]["Name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names.len(), 600, "refused {refused}");
        reads.push(read);
    }
    // Going on after the id: the 600 once, up to a Corteza page (20) of
    // each list past each of the 12 pages served, and one pass for the
    // total on the first page. By whole seconds, page k reads again the
    // 50 (k - 1) records served before it: 50 x 66 = 3,300 more.
    let bound = 600 + 13 * 3 * 20 + 600;
    assert!(reads[0] <= bound, "read {} (bound {bound})", reads[0]);
    assert!(
        reads[1] >= 600 + 3_300 + 600,
        "read {} by whole seconds",
        reads[1]
    );
}
