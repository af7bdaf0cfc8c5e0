//! Corteza as the destination: records from a peer become Corteza records
//! that carry their origin, and are never made twice, even after a batch
//! whose links were lost.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::fake_corteza::FakeCorteza;
use crate::common::{cli_json, pair, spawn_node};
use crate::data::{account_file, create_account, records, share_account};

use super::{TOKEN, in_corteza, sidecar_with, sync_data, token_file};

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
