//! Reading large Corteza modules: a first pull reads each record about
//! once per list it is in, and a second holding many pages of records is
//! read about once.

use serde_json::{Value, json};

use crate::common::fake_corteza::FakeCorteza;
use crate::common::{TestDaemon, spawn_node_with};
use crate::data::records;

use super::{TOKEN, body, share_names, sidecar_with, sync_data, token_file};

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
    // serves; no pass counts a total. Every record changed since each
    // page's cursor would be about 600 + 550 + ... + 50 = 3,900.
    let bound = 860 + 13 * 3 * 20;
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
    // Going on after the id: the 600 once, and up to a Corteza page (20)
    // of each list past each of the 12 pages served. By whole seconds,
    // page k reads again the 50 (k - 1) records served before it: 50 x 66
    // = 3,300 more.
    let bound = 600 + 13 * 3 * 20;
    assert!(reads[0] <= bound, "read {} (bound {bound})", reads[0]);
    assert!(
        reads[1] >= 600 + 3_300,
        "read {} by whole seconds",
        reads[1]
    );
}

/// A first pull of records that were only created costs at most two
/// requests to Corteza per Corteza page of records (a plain list of the
/// 600 in pages of 20 is 30 requests), and gives no total up front: a
/// count would read every record before the first page.
#[tokio::test]
async fn a_first_pull_of_new_records_costs_at_most_two_requests_a_corteza_page() {
    let fake = FakeCorteza::start(TOKEN).await;
    let ns = fake.add_namespace("Fed Source", "fedsrc");
    let module = fake.add_module(&ns, &body("014-A-compose-create-module.json"));
    let template = body("015-A-compose-create-record-1.json");
    for i in 0..600 {
        let mut record = template.clone();
        record["values"][0]["value"] = json!(format!("P{i:03}"));
        fake.add_record(&module, &record);
    }
    let (b, run, read, _a) = pull_contacts(&fake).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(records(&b, "Person", false).await.len(), 600);
    // Every record list this Corteza was sent (none before the pull).
    let during: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/record/"))
        .collect();
    let plain = 600 / 20;
    assert!(
        during.len() <= 2 * plain,
        "{} requests for {plain} Corteza pages",
        during.len()
    );
    assert!(read <= 600 + 20, "read {read} records for 600");
    assert!(
        during.iter().all(|s| !s.query.contains("incTotal")),
        "no count: {during:?}"
    );
}
