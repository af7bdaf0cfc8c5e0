//! The origin's read-ahead (issue 30): while a peer writes a page, the next
//! one is made ready; it is handed out only while the module is exposed as
//! it was when it was made.

use serde_json::Value;

use crate::common::fake_peer::FakePeer;
use crate::common::{cli_json, http, pair_corteza_destination, spawn_node};

fn values(doc: &Value) -> Vec<(String, String)> {
    doc["response"]["set"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["values"].as_array().unwrap().clone())
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_page_made_ready_early_never_carries_a_field_no_longer_exposed() {
    let mut a = spawn_node("A").await;
    let corteza_b = FakePeer::start().await;
    let (a_id, token) = pair_corteza_destination(&a, &corteza_b).await;
    let node = a_id.to_string();
    let fields = ["--field", "name:String", "--field", "secret:String"];
    let mut create = vec!["module", "create", "--handle", "contact_ra"];
    create.extend(fields);
    cli_json(&a, &create).await;
    let both = ["--field", "name", "--field", "secret"];
    let mut expose = vec!["expose", "add", &node, "contact_ra"];
    expose.extend(both);
    let module = cli_json(&a, &expose).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in ["Alice", "Bob", "Carol"] {
        let (name, secret) = (format!("name={name}"), format!("secret={name}-pin"));
        let args = [
            "record",
            "create",
            "contact_ra",
            "--value",
            &name,
            "--value",
            &secret,
        ];
        cli_json(&a, &args).await;
    }
    let get = |query: String| {
        let url = a.federation_url(&format!(
            "/federation/nodes/{a_id}/modules/{module}/records/?{query}"
        ));
        let token = token.clone();
        async move {
            let reply = http().get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(reply.status(), 200);
            reply.json::<Value>().await.unwrap()
        }
    };
    let page1 = get("limit=2".into()).await;
    assert!(values(&page1).iter().any(|(n, _)| n == "secret"), "{page1}");
    let next = page1["response"]["filter"]["nextPage"]
        .as_str()
        .expect("two of three: a next page")
        .to_owned();
    // The second page is being made ready with `secret` in it; the admin
    // stops exposing `secret` before the peer asks for it.
    cli_json(
        &a,
        &["expose", "update", &node, "contact_ra", "--field", "name"],
    )
    .await;
    let cursor: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let page2 = get(format!("limit=2&pageCursor={cursor}")).await;
    assert_eq!(
        values(&page2),
        [("name".to_owned(), "Carol".to_owned())],
        "the page after the change, as the exposure now says: {page2}"
    );
    a.stop().await;
}
