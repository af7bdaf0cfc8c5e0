//! Notifications against real servers on loopback: a small SMTP sink that
//! speaks the protocol (and can hang, drop or refuse connections), and a
//! webhook receiver that checks every signature the way a user's would.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::common::{self, TestDaemon, cli_json, http, run_cli, spawn_node, spawn_node_with};

/// How the sink treats one connection.
#[derive(Debug, Clone, Copy)]
enum Conduct {
    /// A working SMTP server.
    Serve,
    /// Accepts and never says a word (a stalled server).
    Hang,
    /// Accepts and closes at once (a crashing server).
    Drop,
    /// Greets with 421: service not available (a server going down).
    Busy,
}

#[derive(Debug)]
enum Seen {
    /// A hung connection the client gave up on.
    GaveUp,
    Dropped,
    Busy,
    Mail(Mail),
}

#[derive(Debug, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    /// Headers (unfolded) and body, as received.
    data: String,
}

impl Mail {
    fn header(&self, name: &str) -> String {
        let (head, _) = self
            .data
            .split_once("\r\n\r\n")
            .expect("a message has a body");
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .split("\r\n")
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} header in {}", self.data))
    }

    /// The text body, decoded as a mail client would (7bit or
    /// quoted-printable: lettre picks by line length).
    fn text(&self) -> String {
        let (_, body) = self.data.split_once("\r\n\r\n").unwrap();
        let body = match self.header("Content-Transfer-Encoding").as_str() {
            "7bit" => body.to_owned(),
            "quoted-printable" => {
                let joined = body.replace("=\r\n", "");
                let mut out = Vec::new();
                let mut bytes = joined.bytes();
                while let Some(b) = bytes.next() {
                    if b == b'=' {
                        let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                        let text = std::str::from_utf8(&hex).unwrap();
                        out.push(u8::from_str_radix(text, 16).unwrap());
                    } else {
                        out.push(b);
                    }
                }
                String::from_utf8(out).unwrap()
            }
            other => panic!("unexpected transfer encoding {other}"),
        };
        body.replace("\r\n", "\n")
    }
}

/// An SMTP server on loopback that hands every message it accepts (and every
/// connection it mistreats) to the test.
struct SmtpSink {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl SmtpSink {
    /// Treats connections by `script`, in order, then serves.
    async fn start(script: Vec<Conduct>) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut script = script.into_iter();
            while let Ok((socket, _)) = listener.accept().await {
                let conduct = script.next().unwrap_or(Conduct::Serve);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = smtp_session(socket, conduct, tx).await;
                });
            }
        });
        SmtpSink { addr, seen }
    }

    async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(30), self.seen.recv())
            .await
            .expect("the SMTP sink heard nothing for 30 s")
            .expect("the SMTP sink runs")
    }

    async fn mail(&mut self) -> Mail {
        match self.next().await {
            Seen::Mail(mail) => mail,
            other => panic!("expected a message, the sink saw {other:?}"),
        }
    }

    /// The config that sends mail through this sink.
    fn configure(&self, o: &mut fedsync::config::Overrides) {
        o.set("notify.smtp.host", "127.0.0.1")
            .set("notify.smtp.port", i64::from(self.addr.port()))
            .set("notify.smtp.security", "none")
            .set("notify.smtp.from", "fedsync <fedsync@a.test>");
    }
}

async fn smtp_session(
    socket: TcpStream,
    conduct: Conduct,
    seen: mpsc::UnboundedSender<Seen>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    match conduct {
        Conduct::Serve => {}
        Conduct::Hang => {
            // Wait for the client to hang up (read returns 0 at its close).
            let mut line = String::new();
            let _ = read.read_line(&mut line).await;
            let _ = seen.send(Seen::GaveUp);
            return Ok(());
        }
        Conduct::Drop => {
            let _ = seen.send(Seen::Dropped);
            return Ok(());
        }
        Conduct::Busy => {
            write
                .write_all(b"421 4.3.2 sink.test going down, try later\r\n")
                .await?;
            let _ = seen.send(Seen::Busy);
            return Ok(());
        }
    }
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let address = |line: &str| -> String {
        let start = line.find('<').map_or(0, |i| i + 1);
        let end = line.rfind('>').unwrap_or(line.len());
        line[start..end].to_owned()
    };
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .split([' ', ':', '\r', '\n'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250-sink.test\r\n250 8BITMIME\r\n",
            "MAIL" => {
                from = address(&line);
                to.clear();
                b"250 2.1.0 ok\r\n"
            }
            "RCPT" => {
                to.push(address(&line));
                b"250 2.1.5 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    if read.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let _ = seen.send(Seen::Mail(Mail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                }));
                b"250 2.0.0 queued\r\n"
            }
            "RSET" | "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 not implemented\r\n",
        };
        write.write_all(answer).await?;
    }
}

/// One webhook request as received.
#[derive(Debug, Clone)]
struct Hook {
    path: String,
    event: String,
    delivery: String,
    body: Value,
    /// Whether `X-Fedsync-Signature` is the HMAC of the timestamp and the
    /// exact bytes received, under the shared secret.
    signed: bool,
}

const HOOK_SECRET: &str = "a-webhook-secret-for-tests";

/// A webhook receiver: answers with the statuses of `script` in order, then
/// 204; verifies each request's signature as a receiver would.
struct HookReceiver {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<(u16, Hook)>,
}

impl HookReceiver {
    async fn start(script: Vec<u16>) -> HookReceiver {
        use axum::extract::{Request, State};
        type Shared = Arc<(
            Mutex<std::vec::IntoIter<u16>>,
            mpsc::UnboundedSender<(u16, Hook)>,
        )>;
        async fn receive(State(shared): State<Shared>, request: Request) -> axum::http::StatusCode {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let timestamp = header("x-fedsync-timestamp");
            let mut mac =
                <Hmac<Sha256> as KeyInit>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(&bytes);
            let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            let fresh = timestamp
                .parse::<i64>()
                .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
            let hook = Hook {
                path: parts.uri.path().to_owned(),
                event: header("x-fedsync-event"),
                delivery: header("x-fedsync-delivery"),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                signed: fresh && header("x-fedsync-signature") == expected,
            };
            let status = shared.0.lock().unwrap().next().unwrap_or(204);
            let _ = shared.1.send((status, hook));
            axum::http::StatusCode::from_u16(status).unwrap()
        }
        let (tx, seen) = mpsc::unbounded_channel();
        let shared: Shared = Arc::new((Mutex::new(script.into_iter()), tx));
        let app = axum::Router::new()
            .route("/hooks/{who}", axum::routing::post(receive))
            .with_state(shared);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        HookReceiver { addr, seen }
    }

    /// The next request and the status it was answered with.
    async fn next(&mut self) -> (u16, Hook) {
        tokio::time::timeout(Duration::from_secs(30), self.seen.recv())
            .await
            .expect("the webhook receiver heard nothing for 30 s")
            .expect("the receiver runs")
    }

    /// Config for a daemon posting to `/hooks/{who}`, retrying fast.
    fn configure(&self, o: &mut fedsync::config::Overrides, who: &str) {
        o.set(
            "notify.webhook_urls",
            format!("http://{}/hooks/{who}", self.addr),
        )
        .set("notify.webhook_secret", HOOK_SECRET)
        .set("notify.retry_base", "100ms")
        .set("notify.retry_cap", "200ms");
    }
}

/// Registers `b` on `a` through the CLI; returns the node id on `a`.
async fn create_node(a: &TestDaemon, b: &TestDaemon) -> String {
    let created = cli_json(
        a,
        &[
            "node",
            "create",
            "--base-url",
            &b.base_url(),
            "--name",
            "node B",
        ],
    )
    .await;
    created["id"].as_str().unwrap().to_owned()
}

/// A fresh node URI for node `id` on `a`.
async fn node_uri(a: &TestDaemon, id: &str) -> String {
    cli_json(a, &["node", "uri", id]).await["nodeUri"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `b` asks to pair with the node URI `uri`; returns its node id for `a`.
async fn ask_to_pair(b: &TestDaemon, uri: &str) -> String {
    let added = cli_json(b, &["node", "add-uri", uri]).await;
    let id = added["id"].as_str().unwrap().to_owned();
    let paired = cli_json(b, &["node", "pair", &id]).await;
    assert_eq!(paired["status"], "pair_requested", "{paired}");
    id
}

/// The one-time token of a node URI (`http://ID:TOKEN@host/...`).
fn uri_token(uri: &str) -> String {
    let url = url::Url::parse(uri).unwrap();
    url.password().unwrap().to_owned()
}

#[tokio::test]
async fn an_invite_mails_the_node_uri_to_the_typed_address_and_it_pairs() {
    let mut sink = SmtpSink::start(Vec::new()).await;
    let mut a = spawn_node_with("A", |o| sink.configure(o)).await;
    let mut b = spawn_node("B").await;
    let a_id = create_node(&a, &b).await;
    let a_dir = a.data_dir.display().to_string();

    // A bad address is refused, naming it, and sends nothing (the first
    // message the sink gets is the good invite's).
    let bad = run_cli(&[
        "node",
        "invite",
        &a_id,
        "--email",
        "ops at b.test",
        "--data-dir",
        &a_dir,
    ])
    .await;
    assert!(!bad.status.success());
    assert!(
        common::stderr(&bad).contains("`ops at b.test` is not an email address"),
        "{}",
        common::stderr(&bad)
    );

    let invited = cli_json(&a, &["node", "invite", &a_id, "--email", "ops@b.test"]).await;
    assert_eq!(invited["sentTo"], "ops@b.test", "{invited}");
    assert_eq!(invited["id"], a_id.as_str());
    let expires = invited["nodeUriExpiresAt"].as_str().unwrap().to_owned();
    assert!(
        invited.get("nodeUri").is_none(),
        "the URI goes by mail only: {invited}"
    );

    let mail = sink.mail().await;
    assert_eq!(mail.to, ["ops@b.test"], "only the typed address");
    assert_eq!(mail.from, "fedsync@a.test");
    assert_eq!(mail.header("To"), "ops@b.test");
    assert_eq!(
        mail.header("Subject"),
        "[fedsync] A invites you to federate"
    );
    let text = mail.text();
    assert!(text.contains("fedsync node add-uri"), "{text}");
    assert!(text.contains("The node URI is a secret"), "{text}");
    assert!(text.contains("It can be used once"), "{text}");
    let at = chrono::DateTime::parse_from_rfc3339(&expires).unwrap();
    assert!(
        text.contains(&format!(
            "expires at {}",
            at.to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        "{expires}: {text}"
    );
    let uri = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("http://{a_id}:")))
        .unwrap_or_else(|| panic!("no node URI in {text}"))
        .to_owned();

    // The mailed URI is the live one: B pairs with it.
    let b_id = ask_to_pair(&b, &uri).await;
    let confirmed = cli_json(&a, &["node", "confirm", &a_id]).await;
    assert_eq!(confirmed["status"], "paired", "{confirmed}");
    assert_eq!(
        cli_json(&b, &["node", "show", &b_id]).await["status"],
        "paired"
    );

    // The URI's secret is in no stored notification and no audit event; the
    // invite is audited.
    let token = uri_token(&uri);
    let store = a.store().await;
    let outbox = store.list_notifications(100).await.unwrap();
    store.close().await;
    assert!(outbox.iter().all(|n| !n.body.contains(&token)));
    let audit = a.audit().await;
    assert!(
        audit
            .iter()
            .all(|e| !e.detail.contains(&token) && !e.reason.contains(&token))
    );
    let invite = audit
        .iter()
        .find(|e| e.event == "node.invited")
        .expect("the invite is audited");
    assert!(invite.detail.contains("ops@b.test"), "{invite:?}");

    // Without SMTP, an invite says what is missing.
    let b_node = create_node(&b, &a).await;
    let no_smtp = run_cli(&[
        "node",
        "invite",
        &b_node,
        "--email",
        "ops@a.test",
        "--data-dir",
        &b.data_dir.display().to_string(),
    ])
    .await;
    assert!(!no_smtp.status.success());
    assert!(
        common::stderr(&no_smtp).contains("notify.smtp.host"),
        "{}",
        common::stderr(&no_smtp)
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_handshake_request_mails_the_admins_and_a_refusal_is_audited_and_posted() {
    let mut sink = SmtpSink::start(Vec::new()).await;
    let mut hooks = HookReceiver::start(Vec::new()).await;
    let mut a = spawn_node_with("A", |o| {
        sink.configure(o);
        hooks.configure(o, "A");
        o.set("notify.admin_emails", "alice@a.test, bob@a.test");
    })
    .await;
    let mut b = spawn_node("B").await;
    let a_id = create_node(&a, &b).await;
    let uri = node_uri(&a, &a_id).await;
    ask_to_pair(&b, &uri).await;

    let mut to = BTreeSet::new();
    let mut texts = Vec::new();
    for _ in 0..2 {
        let mail = sink.mail().await;
        assert_eq!(mail.to.len(), 1, "one message per admin");
        to.insert(mail.to[0].clone());
        assert_eq!(
            mail.header("Subject"),
            "[fedsync] node B asks to pair with A"
        );
        texts.push(mail.text());
    }
    assert_eq!(
        to,
        BTreeSet::from(["alice@a.test".into(), "bob@a.test".into()])
    );
    let text = &texts[0];
    assert_eq!(texts[0], texts[1]);
    let node = cli_json(&a, &["node", "show", &a_id]).await;
    assert_eq!(node["status"], "pair_requested");
    let source = node["handshakeSourceAddr"].as_str().unwrap();
    for expected in [
        "  Peer:      node B\n".to_owned(),
        format!("  Base URL:  {}\n", b.base_url()),
        format!("  Node id:   {a_id}\n"),
        format!("  From:      {source}\n"),
        "  At:        ".to_owned(),
        format!("    fedsync node confirm {a_id}\n"),
        format!("    fedsync node refuse {a_id}\n"),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in {text}");
    }
    // No secret: not the URI's token, not the token B sent.
    let store = a.store().await;
    let outbox = store.list_notifications(100).await.unwrap();
    store.close().await;
    let token = uri_token(&uri);
    assert!(!text.contains(&token) && !outbox.iter().any(|n| n.body.contains(&token)));
    let sent_by_b = a
        .held_token(a_id.parse().unwrap())
        .await
        .expect("A holds the token B sent");
    assert!(!text.contains(&sent_by_b) && !outbox.iter().any(|n| n.body.contains(&sent_by_b)));

    let (status, hook) = hooks.next().await;
    assert_eq!(status, 204);
    assert!(hook.signed, "{hook:?}");
    assert_eq!(hook.path, "/hooks/A");
    assert_eq!(hook.event, "pair.requested");
    assert_eq!(hook.body["event"], "pair.requested");
    assert!(!hook.body["id"].as_str().unwrap().is_empty());
    assert_eq!(hook.body["source"], "A");
    assert_eq!(hook.body["node"]["id"], a_id.as_str());
    assert_eq!(hook.body["node"]["baseUrl"], b.base_url());
    assert_eq!(hook.body["data"]["sourceAddr"], source);
    assert_eq!(
        hook.body["data"]["approve"],
        format!("fedsync node confirm {a_id}")
    );
    assert!(!hook.body.to_string().contains(&token));

    // The admin refuses: the node fails with the way back, the refusal is
    // audited, posted and mailed, and the token B sent is dropped.
    let refused = cli_json(&a, &["node", "refuse", &a_id]).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["statusReason"]
            .as_str()
            .unwrap()
            .contains(&format!("fedsync node uri {a_id}")),
        "{refused}"
    );
    let audit = a.audit().await;
    let declined = audit
        .iter()
        .find(|e| e.event == "handshake.declined")
        .expect("the refusal is audited");
    assert_eq!(declined.reason, "refused_by_admin");
    assert_eq!(declined.node_id.map(|n| n.to_string()), Some(a_id.clone()));
    let (_, hook) = hooks.next().await;
    assert!(hook.signed);
    assert_eq!(hook.event, "pair.refused");
    assert_eq!(hook.body["node"]["status"], "failed");
    for _ in 0..2 {
        let mail = sink.mail().await;
        assert_eq!(
            mail.header("Subject"),
            "[fedsync] pairing with node B was refused"
        );
    }
    // A refused request cannot be confirmed afterwards.
    let again = run_cli(&[
        "node",
        "confirm",
        &a_id,
        "--data-dir",
        &a.data_dir.display().to_string(),
    ])
    .await;
    assert!(!again.status.success());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_mail_server_that_hangs_drops_or_refuses_delays_no_handshake_and_is_retried() {
    // The first three connections fail three ways; the fourth delivers.
    let mut sink = SmtpSink::start(vec![Conduct::Hang, Conduct::Drop, Conduct::Busy]).await;
    let mut a = spawn_node_with("A", |o| {
        sink.configure(o);
        o.set("notify.admin_emails", "alice@a.test")
            .set("notify.timeout", "1s")
            .set("notify.retry_base", "100ms")
            .set("notify.retry_cap", "200ms");
    })
    .await;
    let mut b = spawn_node("B").await;
    let a_id = create_node(&a, &b).await;
    let uri = node_uri(&a, &a_id).await;
    // The handshake completes while the mail server hangs.
    ask_to_pair(&b, &uri).await;
    assert_eq!(
        cli_json(&a, &["node", "show", &a_id]).await["status"],
        "pair_requested"
    );
    assert!(matches!(sink.next().await, Seen::GaveUp));
    // ... and the admin can approve before the notice is out.
    let confirmed = cli_json(&a, &["node", "confirm", &a_id]).await;
    assert_eq!(confirmed["status"], "paired");
    assert!(matches!(sink.next().await, Seen::Dropped));
    assert!(matches!(sink.next().await, Seen::Busy));
    let mail = sink.mail().await;
    assert_eq!(mail.to, ["alice@a.test"]);
    assert_eq!(
        mail.header("Subject"),
        "[fedsync] node B asks to pair with A"
    );

    // Each failure was recorded before the next try: the row says three.
    let store = a.store().await;
    let row = store
        .list_notifications(10)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.event == "pair.requested")
        .unwrap();
    store.close().await;
    assert_eq!(row.attempts, 3, "{row:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn sync_events_reach_a_webhook_signed_and_a_failing_receiver_gets_them_again() {
    use crate::common::fake_peer::{FakePeer, Reply};
    // The receiver fails the first delivery with 503: the same delivery
    // comes again, freshly signed.
    let mut hooks = HookReceiver::start(vec![503]).await;
    let mut a = spawn_node("A").await;
    let mut b = spawn_node_with("B", |o| hooks.configure(o, "B")).await;
    let (a_for_b, b_for_a) = common::pair(&a, &b).await;
    let (node_a, node_b) = (a_for_b.to_string(), b_for_a.to_string());

    // A structure change on A breaks B's mapping: mapping.broken.
    crate::data::share_account(&a, &b, a_for_b, b_for_a).await;
    cli_json(
        &a,
        &[
            "expose", "update", &node_a, "Account", "--field", "Name", "--field", "Tags",
        ],
    )
    .await;
    cli_json(&b, &["sync", "now", &node_b, "--kind", "structure"]).await;

    let (status, first) = hooks.next().await;
    assert_eq!(status, 503);
    let (status, again) = hooks.next().await;
    assert_eq!(status, 204);
    for hook in [&first, &again] {
        assert!(hook.signed, "{hook:?}");
        assert_eq!(hook.path, "/hooks/B");
        assert_eq!(hook.event, "mapping.broken");
    }
    assert_eq!(
        first.delivery, again.delivery,
        "a retry is the same delivery"
    );
    assert_eq!(first.body, again.body);
    assert_eq!(again.body["node"]["id"], node_b.as_str());
    assert_eq!(again.body["data"]["module"], "Account");
    assert_eq!(
        again.body["data"]["reason"],
        "origin field `Score` was removed"
    );

    // A peer that answers 401 needs re-pairing: sync.stopped.
    let corteza = FakePeer::start().await;
    let node_c = common::pair_corteza_origin(&b, &corteza).await;
    corteza.reply(Reply::Json(
        401,
        serde_json::json!({"error": {"message": "unauthorized"}}),
    ));
    let _ = run_cli(&[
        "sync",
        "now",
        &node_c.to_string(),
        "--kind",
        "structure",
        "--data-dir",
        &b.data_dir.display().to_string(),
    ])
    .await;
    let (_, stopped) = hooks.next().await;
    assert!(stopped.signed, "{stopped:?}");
    assert_eq!(stopped.event, "sync.stopped");
    assert_eq!(stopped.body["node"]["id"], node_c.to_string());
    assert_eq!(stopped.body["data"]["kind"], "structure");
    assert!(
        stopped.body["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("re-pair"),
        "{stopped:?}"
    );

    // A body that is not the one signed does not verify with the receiver's
    // check.
    let now = chrono::Utc::now().timestamp();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{now}.{{}}").as_bytes());
    let forged = http()
        .post(format!("http://{}/hooks/forged", hooks.addr))
        .header("X-Fedsync-Timestamp", now.to_string())
        .header(
            "X-Fedsync-Signature",
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        )
        .body("{\"event\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 204);
    let (_, forged) = hooks.next().await;
    assert!(!forged.signed, "the check can fail");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_job_failing_for_long_is_posted_once_per_run_of_failures() {
    use crate::common::fake_peer::{FakePeer, Reply};
    let mut hooks = HookReceiver::start(Vec::new()).await;
    let mut b = spawn_node_with("B", |o| {
        hooks.configure(o, "B");
        o.set("sync.retry_base", "20ms")
            .set("sync.retry_cap", "50ms")
            .set("notify.failing_for", "300ms");
    })
    .await;
    let corteza = FakePeer::start().await;
    let node = common::pair_corteza_origin(&b, &corteza).await;
    for _ in 0..1000 {
        corteza.reply(Reply::Json(
            500,
            serde_json::json!({"error": {"message": "busy"}}),
        ));
    }
    let b_dir = b.data_dir.display().to_string();
    let node_text = node.to_string();
    let now = [
        "sync",
        "now",
        &node_text,
        "--kind",
        "structure",
        "--data-dir",
        &b_dir,
    ];
    let _ = run_cli(&now).await;

    // Retried with backoff until it has failed for 300 ms: reported.
    let (_, failing) = hooks.next().await;
    assert!(failing.signed, "{failing:?}");
    assert_eq!(failing.event, "sync.failing", "{failing:?}");
    assert_eq!(failing.body["node"]["id"], node_text.as_str());
    assert_eq!(failing.body["data"]["kind"], "structure");
    assert!(
        failing.body["data"]["error"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{failing:?}"
    );
    let since = chrono::DateTime::parse_from_rfc3339(
        failing.body["data"]["failingSince"].as_str().unwrap(),
    )
    .unwrap();
    let occurred =
        chrono::DateTime::parse_from_rfc3339(failing.body["occurredAt"].as_str().unwrap()).unwrap();
    assert!(since <= occurred, "{failing:?}");

    // It keeps failing (two more attempts of three tries each) without a
    // second report; then the peer refuses our token and the job stops: the
    // next event is that one.
    let seen = corteza.requests().len();
    while corteza.requests().len() < seen + 6 {
        tokio::task::yield_now().await;
    }
    corteza.clear_replies();
    corteza.reply(Reply::Json(
        401,
        serde_json::json!({"error": {"message": "unauthorized"}}),
    ));
    let (_, next) = hooks.next().await;
    assert_eq!(next.event, "sync.stopped", "reported once: {next:?}");
    b.stop().await;
}
