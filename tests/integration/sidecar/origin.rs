//! Corteza as the origin: a module of a Corteza beside fedsync exposed to
//! a second fedsync, which receives its records and their changes.

use serde_json::json;

use crate::common::fake_corteza::FakeCorteza;
use crate::common::{cli_json, pair, run_cli, spawn_node, stderr};
use crate::data::records;

use super::{TOKEN, body, live, recorded_source, share_contact, sidecar, sync_data, token_file};

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
    // Pages of two; one record to ask whether anything was updated or
    // removed.
    assert!(
        lists
            .iter()
            .all(|s| s.query.contains("limit=2") || s.query.contains("limit=1")),
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
