//! The web console in a real headless Chromium: two real daemons paired
//! entirely through the browser, a module exposed with two of its fields
//! and mapped on the other side, a sync whose progress bar reaches 100%,
//! the records shown; a read-only session that cannot act, a cross-site
//! POST refused, a peer's name with markup shown as text, a login link that
//! works once. Each page's screenshot goes to `target/ui-screenshots/`.

use crate::common::browser::{Browser, Driver};
use crate::common::{TestDaemon, cli_json, spawn_node};
use crate::ui::login_link;

/// A label with markup, sent to the peer in node URIs.
const MARKUP_LABEL: &str = "<i>Node A</i><img src=x>";

async fn sign_in(browser: &Browser, d: &TestDaemon, readonly: bool) {
    let (url, _) = login_link(d, readonly).await;
    browser.goto(&url).await;
    browser.wait("#nodes, p.card").await;
    let address = browser.client.current_url().await.unwrap();
    assert_eq!(address.path(), "/ui/");
    assert!(address.query().is_none(), "the secret left the address bar");
}

async fn import_accounts(d: &TestDaemon, n: usize) {
    cli_json(
        d,
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
    let file = d.data_dir.join("accounts.jsonl");
    let lines: Vec<String> = (0..n)
        .map(|i| {
            serde_json::json!({"Phone": format!("+1-555-{i:04}"), "LinkedIn": format!("https://l.example/{i}"), "Secret": "s"})
                .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    cli_json(d, &["record", "import", "Account", file.to_str().unwrap()]).await;
}

#[tokio::test]
async fn two_daemons_pair_share_map_and_sync_through_the_browser() {
    let Some(mut driver) =
        Driver::start("two_daemons_pair_share_map_and_sync_through_the_browser").await
    else {
        return;
    };
    let a = spawn_node(MARKUP_LABEL).await;
    let b = spawn_node("B").await;
    let on_a = driver.session().await;
    let on_b = driver.session().await;
    sign_in(&on_a, &a, false).await;
    sign_in(&on_b, &b, false).await;

    // A invites B: create, copy the node URI.
    on_a.goto(&a.admin_url("/ui/peers/new")).await;
    on_a.screenshot("add-peer").await;
    on_a.fill("#name", "Node B").await;
    on_a.fill("#base_url", &b.base_url()).await;
    on_a.click_button("Create and get the node URI").await;
    let uri_field = on_a.wait("#uri-value").await;
    on_a.click_button("Copy").await;
    on_a.wait_text("Copied").await;
    let uri = uri_field.prop("value").await.unwrap().unwrap();
    assert!(uri.contains("@127.0.0.1"), "{uri}");
    on_a.screenshot("node-uri").await;

    // B pastes it and pairs.
    on_b.goto(&b.admin_url("/ui/peers/new")).await;
    on_b.fill("#node_uri", &uri).await;
    on_b.click_button("Add the inviter").await;
    on_b.wait_text("Peer added from its node URI").await;
    on_b.click_button("Pair").await;
    on_b.wait_text("Handshake request accepted by the peer")
        .await;

    // A sees the request waiting and approves it.
    on_a.goto(&a.admin_url("/ui/")).await;
    on_a.wait(".banner a").await.click().await.unwrap();
    on_a.wait("#handshake").await;
    on_a.screenshot("handshake-request").await;
    on_a.click_button("Approve").await;
    on_a.wait_text("Done: the node is paired.").await;
    on_a.screenshot("node").await;
    on_b.goto(&b.admin_url("/ui/")).await;
    on_b.wait_text("paired").await;

    // B shows A's name, markup and all, as text.
    let name = on_b.text("#nodes td a").await;
    assert_eq!(name, MARKUP_LABEL);
    assert_eq!(
        on_b.count("#nodes i, #nodes img").await,
        0,
        "no markup from a peer"
    );

    // A exposes Account with two of its three fields.
    import_accounts(&a, 120).await;
    on_a.wait("a[href$='/exposures']")
        .await
        .click()
        .await
        .unwrap();
    on_a.wait("#module")
        .await
        .select_by_label("Account")
        .await
        .unwrap();
    on_a.click_button("Choose its fields").await;
    on_a.wait("#expose input[value='Phone']")
        .await
        .click()
        .await
        .unwrap();
    on_a.find("#expose input[value='LinkedIn']")
        .await
        .click()
        .await
        .unwrap();
    on_a.click_button("Expose").await;
    on_a.wait_text("Exposure saved.").await;
    let row = on_a.text("#exposures tbody tr").await;
    assert!(
        row.contains("Phone") && row.contains("LinkedIn") && !row.contains("Secret"),
        "{row}"
    );
    on_a.screenshot("exposures").await;

    // B pulls the structure, then maps Account onto its Contact.
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
    let b_node = on_b
        .find("#nodes td a")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    on_b.goto(&b.admin_url(&b_node)).await;
    on_b.click_button("Sync structure now").await;
    on_b.wait("#sync-bar[aria-valuenow='100']").await;
    on_b.goto(&b.admin_url(&format!("{b_node}/shared"))).await;
    on_b.wait("#shared a").await.click().await.unwrap();
    on_b.wait("#module")
        .await
        .select_by_label("Contact")
        .await
        .unwrap();
    on_b.click_button("Choose its fields").await;
    on_b.wait("#mapping").await;
    // Only fields whose kinds convert are offered: a Url lands in a String.
    on_b.find("select[name='map:Phone']")
        .await
        .select_by_value("Tel")
        .await
        .unwrap();
    on_b.find("select[name='map:LinkedIn']")
        .await
        .select_by_value("Social")
        .await
        .unwrap();
    on_b.screenshot("mapping").await;
    on_b.click_button("Save the mapping").await;
    on_b.wait_text("Mapping saved.").await;
    on_b.goto(&b.admin_url(&format!("{b_node}/shared"))).await;
    on_b.wait_text("ok into Contact").await;
    on_b.screenshot("shared").await;

    // A data sync, its progress bar fed by the follow stream, to 100%.
    on_b.goto(&b.admin_url(&b_node)).await;
    on_b.click_button("Sync data now").await;
    on_b.wait("#sync-bar[aria-valuenow='100']").await;
    on_b.wait_text("done: 1 run succeeded, 120 records written")
        .await;
    on_b.screenshot("sync").await;
    on_b.goto(&b.admin_url(&b_node)).await;
    on_b.wait("#runs").await;
    on_b.screenshot("node-runs").await;

    // The records, paged.
    on_b.goto(&b.admin_url("/ui/modules")).await;
    on_b.screenshot("modules").await;
    on_b.wait("#modules a").await.click().await.unwrap();
    on_b.wait("#records").await;
    assert_eq!(on_b.count("#records tbody tr").await, 50);
    assert!(on_b.text("#records").await.contains("+1-555-0000"));
    on_b.screenshot("records").await;
    on_b.find("#next").await.click().await.unwrap();
    on_b.wait_text("First page").await;
    assert_eq!(on_b.count("#records tbody tr").await, 50);
    on_b.find("#next").await.click().await.unwrap();
    on_b.wait_text("First page").await;
    assert_eq!(on_b.count("#records tbody tr").await, 20);
    assert_eq!(on_b.count("#next").await, 0);

    // The overview, the audit log and the tokens.
    on_b.goto(&b.admin_url("/ui/")).await;
    on_b.wait("#nodes").await;
    on_b.screenshot("overview").await;
    // A phone-sized window: the table scrolls in its box, the page does not.
    on_b.client.set_window_size(390, 844).await.unwrap();
    on_b.goto(&b.admin_url(&b_node)).await;
    on_b.wait("#runs").await;
    let overflow = on_b
        .client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow,
        serde_json::json!(true),
        "no sideways scrolling on a phone"
    );
    on_b.screenshot("node-phone").await;
    on_b.client.set_window_size(1280, 900).await.unwrap();
    on_b.goto(&b.admin_url("/ui/audit")).await;
    on_b.wait("#audit").await;
    on_b.screenshot("audit").await;
    on_b.goto(&b.admin_url("/ui/tokens")).await;
    on_b.wait("#tokens").await;
    on_b.screenshot("tokens").await;
    on_a.close().await;
    on_b.close().await;
}

#[tokio::test]
async fn read_only_sessions_cross_site_posts_and_used_links_are_refused() {
    let Some(mut driver) =
        Driver::start("read_only_sessions_cross_site_posts_and_used_links_are_refused").await
    else {
        return;
    };
    let a = spawn_node("A").await;
    let created = cli_json(
        &a,
        &[
            "node",
            "create",
            "--base-url",
            "http://127.0.0.1:9/federation",
            "--name",
            "peer",
        ],
    )
    .await;
    let id = created["node"]["id"]
        .as_str()
        .or(created["id"].as_str())
        .unwrap()
        .to_owned();

    // Read-only: controls disabled, and the server refuses a forced POST.
    let reader = driver.session().await;
    sign_in(&reader, &a, true).await;
    reader.goto(&a.admin_url(&format!("/ui/nodes/{id}"))).await;
    reader.wait_text("Read-only session").await;
    let pause = reader.find("form[action$='/pause'] button").await;
    assert!(
        !pause.is_enabled().await.unwrap(),
        "disabled for a read-only session"
    );
    reader.screenshot("read-only").await;
    reader
        .client
        .execute(
            "document.querySelector(\"form[action$='/pause'] button\").disabled = false",
            vec![],
        )
        .await
        .unwrap();
    reader
        .find("form[action$='/pause'] button")
        .await
        .click()
        .await
        .unwrap();
    reader.wait_text("is read-only").await;
    assert!(!a.node(id.parse().unwrap()).await.paused);

    // A login link works once: a second browser gets the refusal.
    let (url, _) = login_link(&a, false).await;
    let first = driver.session().await;
    first.goto(&url).await;
    first.wait("p.card, #nodes").await;
    let second = driver.session().await;
    second.goto(&url).await;
    second.wait_text("this login link cannot be used").await;
    second.screenshot("login").await;

    // A page of another origin (the same host, another port) posts to the
    // console with the right CSRF token: refused, nothing changes.
    let admin_page = first.client.source().await.unwrap();
    assert!(admin_page.contains("Federated nodes"));
    first.goto(&a.admin_url(&format!("/ui/nodes/{id}"))).await;
    let csrf = first
        .find("input[name='csrf']")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let (evil, _site) = evil_site(&a.admin_url(&format!("/ui/nodes/{id}/pause")), &csrf).await;
    first.goto(&evil).await;
    first.click_button("Win a prize").await;
    first.wait_text("refused").await;
    first.screenshot("cross-site-refused").await;
    assert!(
        !a.node(id.parse().unwrap()).await.paused,
        "a cross-site POST changes nothing"
    );
    for b in [reader, first, second] {
        b.close().await;
    }
}

/// Aborts the task it holds when dropped.
struct Site(tokio::task::JoinHandle<std::io::Result<()>>);

impl Drop for Site {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A page on another origin whose form posts to `target`; served until the
/// `Site` is dropped.
async fn evil_site(target: &str, csrf: &str) -> (String, Site) {
    let page = format!(
        "<!doctype html><form method=post action='{target}'><input type=hidden name=csrf value='{csrf}'><button type=submit>Win a prize</button></form>"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), Site(task))
}
