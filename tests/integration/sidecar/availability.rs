//! Corteza's availability: a daemon started before Corteza is not ready
//! until it answers, a rotated token file is used without a restart, and
//! outages are retried while refusals stop with Corteza's message.

use crate::common::fake_corteza::FakeCorteza;
use crate::common::{cli_json, http, pair, spawn_node};

use super::{
    TOKEN, body, live, recorded_source, share_contact, share_names, sidecar, sidecar_with,
    sync_data, token_file,
};

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
