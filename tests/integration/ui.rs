//! The web console's security properties over plain HTTP: only on the
//! admin listener, its headers, the one-time login link, a cookie that
//! opens `/ui/` and nothing else, same-origin and CSRF checks on every
//! change, read-only sessions, no secret in the daemon's log; and the
//! services added for it (admin tokens over gRPC, paged ListRecords).

use fedsync::admin::proto::v1;

use crate::common::{self, TestDaemon, cli_json, http, spawn_node, with_token};

/// A login link from `fedsync ui --json`: (url, expiresAt).
pub async fn login_link(d: &TestDaemon, readonly: bool) -> (String, String) {
    let mut args = vec!["ui"];
    if readonly {
        args.push("--readonly");
    }
    let out = cli_json(d, &args).await;
    (
        out["url"].as_str().unwrap().to_owned(),
        out["expiresAt"].as_str().unwrap().to_owned(),
    )
}

fn no_redirects() -> reqwest::Client {
    fedsync::federation::client::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Opens a login link; the session cookie's value and its Set-Cookie line.
async fn sign_in(url: &str) -> (String, String) {
    let answer = no_redirects().get(url).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{url}");
    let line = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
    let value = line
        .split(';')
        .next()
        .and_then(|p| p.strip_prefix("fedsync_console="))
        .unwrap()
        .to_owned();
    (value, line)
}

/// A console page with the session cookie.
async fn get(d: &TestDaemon, cookie: &str, path: &str) -> reqwest::Response {
    no_redirects()
        .get(d.admin_url(path))
        .header("cookie", format!("fedsync_console={cookie}"))
        .send()
        .await
        .unwrap()
}

/// The CSRF token in a console page.
async fn csrf(d: &TestDaemon, cookie: &str) -> String {
    let page = get(d, cookie, "/ui/").await.text().await.unwrap();
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

async fn create_node(d: &TestDaemon) -> u64 {
    d.nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "peer".into(),
                base_url: "http://127.0.0.1:9/federation".into(),
                contact: String::new(),
            },
            &d.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap()
        .id
}

async fn paused(d: &TestDaemon, id: u64) -> bool {
    d.node(id).await.paused
}

/// POSTs `pause` of node `id` with a form carrying `csrf` and the headers.
async fn post_pause(
    d: &TestDaemon,
    cookie: &str,
    id: u64,
    csrf: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = no_redirects()
        .post(d.admin_url(&format!("/ui/nodes/{id}/pause")))
        .header("cookie", format!("fedsync_console={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_console_is_on_the_admin_listener_only_with_strict_headers() {
    let d = spawn_node("a").await;
    let public = http().get(d.federation_url("/ui/")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    let login = http()
        .get(d.federation_url("/ui/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 404);

    let page = no_redirects()
        .get(d.admin_url("/ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303, "signed out: to the login page");
    assert_eq!(page.headers()["location"], "/ui/login");
    let login = no_redirects()
        .get(d.admin_url("/ui/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let h = login.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let js = no_redirects()
        .get(d.admin_url("/ui/assets/console.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let body = login.text().await.unwrap();
    assert!(!body.contains("<script>"), "no inline script: {body}");
}

#[tokio::test]
async fn a_login_link_works_once_and_its_cookie_opens_the_console_only() {
    let d = spawn_node("a").await;
    let (url, expires_at) = login_link(&d, false).await;
    assert!(url.starts_with(&d.admin_url("/ui/login?token=")), "{url}");
    let expires = chrono::DateTime::parse_from_rfc3339(&expires_at).unwrap();
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((200..=300).contains(&left), "valid a few minutes: {left} s");

    let (cookie, line) = sign_in(&url).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui/"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "plain http: {line}");
    let again = no_redirects().get(&url).send().await.unwrap();
    assert_eq!(again.status(), 401, "a login link works once");
    assert!(again.headers().get("set-cookie").is_none());

    let page = get(&d, &cookie, "/ui/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Federated nodes"));

    // The cookie is no admin token: REST and gRPC refuse it.
    let rest = http()
        .get(d.admin_url("/federation/nodes/"))
        .bearer_auth(&cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 401);
    let grpc = d
        .nodes()
        .await
        .list_nodes(with_token(v1::ListNodesRequest::default(), &cookie))
        .await
        .unwrap_err();
    assert_eq!(grpc.code(), tonic::Code::Unauthenticated);
    // And an admin token is no cookie.
    let page = get(&d, &d.admin_token(), "/ui/").await;
    assert_eq!(page.status(), 303);

    // Signing out revokes the session.
    let token = csrf(&d, &cookie).await;
    let out = no_redirects()
        .post(d.admin_url("/ui/logout"))
        .header("cookie", format!("fedsync_console={cookie}"))
        .header("origin", d.admin_url(""))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(get(&d, &cookie, "/ui/").await.status(), 303);
}

#[tokio::test]
async fn cross_site_and_tokenless_posts_are_refused() {
    let d = spawn_node("a").await;
    let id = create_node(&d).await;
    let (cookie, _) = sign_in(&login_link(&d, false).await.0).await;
    let token = csrf(&d, &cookie).await;
    let ours = d.admin_url("");
    type Headers<'a> = Vec<(&'a str, &'a str)>;
    let cases: [(&str, &str, Headers); 4] = [
        (
            "another origin",
            token.as_str(),
            vec![("origin", "http://evil.example")],
        ),
        (
            "a cross-site fetch",
            token.as_str(),
            vec![("origin", ours.as_str()), ("sec-fetch-site", "cross-site")],
        ),
        ("no origin", token.as_str(), vec![]),
        ("no CSRF token", "", vec![("origin", ours.as_str())]),
    ];
    for (what, csrf, headers) in cases {
        let answer = post_pause(&d, &cookie, id, csrf, &headers).await;
        assert_eq!(answer.status(), 403, "{what}");
        assert!(answer.text().await.unwrap().contains("refused"), "{what}");
        assert!(!paused(&d, id).await, "{what} changed nothing");
    }
    let answer = post_pause(
        &d,
        &cookie,
        id,
        &token,
        &[("origin", ours.as_str()), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(answer.status(), 303);
    assert!(paused(&d, id).await, "the console's own form passes");
}

#[tokio::test]
async fn a_read_only_session_sees_and_cannot_act() {
    let d = spawn_node("a").await;
    let id = create_node(&d).await;
    let (cookie, _) = sign_in(&login_link(&d, true).await.0).await;
    let page = get(&d, &cookie, &format!("/ui/nodes/{id}")).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Read-only session"), "{html}");
    assert!(html.contains("disabled"), "controls are disabled: {html}");
    let token = csrf(&d, &cookie).await;
    let ours = d.admin_url("");
    let answer = post_pause(&d, &cookie, id, &token, &[("origin", ours.as_str())]).await;
    assert_eq!(answer.status(), 403);
    assert!(answer.text().await.unwrap().contains("is read-only"));
    assert!(!paused(&d, id).await);
}

#[tokio::test]
async fn neither_the_login_secret_nor_the_cookie_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let sockets = tempfile::tempdir().unwrap();
    let (mut child, _) = common::spawn_child_daemon(dir.path(), sockets.path(), &[]).await;
    let d = TestDaemon::detached(dir.path().to_owned());
    let (url, _) = login_link(&d, false).await;
    let secret = url.split("token=").nth(1).unwrap().to_owned();
    let (cookie, _) = sign_in(&url).await;
    // A used link (refused), a wrong one, and the cookie refused by REST.
    assert_eq!(no_redirects().get(&url).send().await.unwrap().status(), 401);
    let wrong = format!("{url}x");
    assert_eq!(
        no_redirects().get(&wrong).send().await.unwrap().status(),
        401
    );
    let admin = std::fs::read_to_string(dir.path().join("admin.addr")).unwrap();
    let rest = http()
        .get(format!("http://{}/federation/nodes/", admin.trim()))
        .bearer_auth(&cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 401);
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let log = std::fs::read_to_string(common::child_log(dir.path(), sockets.path())).unwrap();
    assert!(
        log.contains("admin request refused"),
        "the refusal is logged: {log}"
    );
    let signature = secret.rsplit('.').next().unwrap();
    for (what, text) in [
        ("login secret", signature),
        ("cookie", cookie.rsplit('.').next().unwrap()),
    ] {
        assert!(!log.contains(text), "the {what} is in the log");
    }
    assert!(!log.contains("token="), "no login URL in the log");
}

#[tokio::test]
async fn admin_tokens_are_listed_and_revoked_over_grpc() {
    use v1::admin_token_service_client::AdminTokenServiceClient;
    let d = spawn_node("a").await;
    let (cookie, _) = sign_in(&login_link(&d, false).await.0).await;
    let mut tokens = AdminTokenServiceClient::new(d.channel().await);
    let list = tokens
        .list_admin_tokens(with_token(v1::ListAdminTokensRequest {}, &d.admin_token()))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let login = list.iter().find(|t| t.name == "web console login").unwrap();
    assert_eq!(login.state, "revoked", "a used link is revoked");
    let session = list
        .iter()
        .find(|t| t.name.starts_with("web console session"))
        .unwrap();
    assert_eq!(session.state, "active");
    let revoked = tokens
        .revoke_admin_token(with_token(
            v1::AdminTokenRef { id: session.id },
            &d.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.state, "revoked");
    assert_eq!(
        get(&d, &cookie, "/ui/").await.status(),
        303,
        "the session ended"
    );
    let missing = tokens
        .revoke_admin_token(with_token(v1::AdminTokenRef { id: 42 }, &d.admin_token()))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn list_records_pages_by_id() {
    use v1::record_service_client::RecordServiceClient;
    let d = spawn_node("a").await;
    cli_json(
        &d,
        &[
            "module", "create", "--handle", "Item", "--field", "N:Number",
        ],
    )
    .await;
    for n in 0..5 {
        cli_json(
            &d,
            &["record", "create", "Item", "--value", &format!("N={n}")],
        )
        .await;
    }
    let records = RecordServiceClient::new(d.channel().await);
    let page = |after: u64| {
        let request = with_token(
            v1::ListRecordsRequest {
                module: "Item".into(),
                include_deleted: false,
                limit: 2,
                after,
            },
            &d.admin_token(),
        );
        let mut client = records.clone();
        async move {
            let mut stream = client.list_records(request).await.unwrap().into_inner();
            let mut ids = Vec::new();
            while let Some(r) = stream.message().await.unwrap() {
                ids.push(r.id);
            }
            ids
        }
    };
    let first = page(0).await;
    let second = page(first[1]).await;
    let third = page(second[1]).await;
    assert_eq!((first.len(), second.len(), third.len()), (2, 2, 1));
    let mut all = [first, second, third].concat();
    let sorted = {
        let mut s = all.clone();
        s.sort();
        s
    };
    assert_eq!(all, sorted, "pages follow ids");
    all.dedup();
    assert_eq!(all.len(), 5, "no record twice");
}
