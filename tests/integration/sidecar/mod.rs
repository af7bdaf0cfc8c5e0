//! Sidecar mode: fedsync beside a Corteza instance, reading and writing its
//! records through the compose REST API. Corteza here is the HTTP-level
//! fake of `common::fake_corteza`, answering with payloads recorded from a
//! real Corteza server (see its doc comment for how they were recorded);
//! the peers are real fedsync daemons on loopback.

mod availability;
mod destination;
mod origin;
mod paging;
mod writes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::fake_corteza::FakeCorteza;
use crate::common::fake_peer::fixture;
use crate::common::{TestDaemon, cli_json, pair, run_cli, spawn_node_with, stderr, stdout};
use crate::data::records;

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
        token.to_owned(),
        namespace.to_owned(),
    );
    spawn_node_with(label, move |o| {
        sidecar_settings(o, &url, &token, &namespace);
        extra(o);
    })
    .await
}

/// The settings of a sidecar beside `corteza_url`'s namespace `namespace`.
pub(crate) fn sidecar_settings(
    o: &mut fedsync::config::Overrides,
    corteza_url: &str,
    token: &Path,
    namespace: &str,
) {
    o.set("local.kind", "corteza")
        .set("local.corteza_url", corteza_url)
        .set("local.corteza_token_file", token.display().to_string())
        .set("local.corteza_namespace", namespace)
        .set("local.corteza_requests_per_second", 1000)
        // Lists of more than two span pages (Corteza's nextPage).
        .set("local.corteza_page_size", 2);
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
