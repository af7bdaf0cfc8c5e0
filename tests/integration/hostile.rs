//! Hostile and broken peers (issue 11): against pairing, structure sync and
//! data sync, a peer that stalls, drips its answer, floods, sends a gzip
//! bomb, truncated or mistyped JSON, errors, redirects, cursor loops, ids
//! of other pairs' or of local records, or stops accepting our token half
//! way. Whatever it does, the attempt ends within a bound the configured
//! timeouts give, says why it failed (retriable or stopped), local records
//! and other pairs' data stay as they were, and a healthy peer's sync goes
//! on meanwhile.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fedsync::admin::proto::v1;
use serde_json::{Value, json};

use crate::common::fake_peer::{
    FakePeer, Recorded, Reply, corteza_origin, fixture, gzip_bomb, next_page,
};
use crate::common::{
    TestDaemon, add_node_uri, cli_json, pair_corteza_origin_as, spawn_node_with, with_token,
};

/// The peer request timeout the daemon under test runs with.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Its cap on the bytes of one answer (the least the config allows).
const CAP: u64 = 65536;

/// The longest a sync attempt may take: a page is tried three times, each
/// try cut off by the request timeout, with two waits of at most 1 s
/// between them (`page_retry`); plus a margin for the local work on a
/// loaded machine.
fn attempt_bound() -> Duration {
    TIMEOUT * 3 + Duration::from_secs(2) + Duration::from_secs(5)
}

/// A pairing request is tried once, cut off by the request timeout; plus
/// the same margin.
fn pairing_bound() -> Duration {
    TIMEOUT + Duration::from_secs(5)
}

async fn node_b() -> TestDaemon {
    spawn_node_with("B", |o| {
        o.set("federation.peer_request_timeout", "2s")
            .set("federation.peer_connect_timeout", "2s")
            .set("federation.peer_max_response_bytes", CAP as i64)
            .set("sync.max_concurrent", 32)
            .set("sync.per_peer", 4)
            // A failed job waits a random share of its backoff (full
            // jitter, so an hour can come out as seconds); a year keeps
            // scheduled retries out of the request counts.
            .set("sync.retry_base", "8760h")
            .set("sync.retry_cap", "8760h");
    })
    .await
}

/// Awaits `future`, failing the test if it takes longer than `bound`;
/// returns its output and how long it took.
async fn within<T>(what: &str, bound: Duration, future: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    match tokio::time::timeout(bound, future).await {
        Ok(out) => (out, start.elapsed()),
        Err(_) => panic!("{what}: still running after {bound:?}"),
    }
}

/// Polls `check` until it holds (at most 30 s).
async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::task::yield_now().await;
    }
}

// ------------------------------------------------------------ the faults

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The answer never comes.
    Stall,
    /// The answer comes one byte every 50 ms.
    Drip,
    /// A body that never ends.
    Flood,
    /// A small gzip body that inflates to a hundred times the cap.
    GzipBomb,
    /// The right document cut in half.
    Truncated,
    /// The right document with an id as a JSON number, not a string.
    WrongTypes,
    /// An HTML error page with HTTP 502.
    ServerError,
    /// A 307 to another server.
    Redirect,
    /// The page after this one is this one again (same `nextPage`).
    SameCursor,
    /// A second page whose `nextPage` leads back to the first page.
    CursorBackToFirst,
    /// Our token stops working: 401 from the second page on.
    TokenRevoked,
}

/// Faults of one answer (any request can get them).
const ANSWER_FAULTS: [Fault; 8] = [
    Fault::Stall,
    Fault::Drip,
    Fault::Flood,
    Fault::GzipBomb,
    Fault::Truncated,
    Fault::WrongTypes,
    Fault::ServerError,
    Fault::Redirect,
];

/// Faults of a paged pull.
const PAGED_FAULTS: [Fault; 11] = [
    Fault::Stall,
    Fault::Drip,
    Fault::Flood,
    Fault::GzipBomb,
    Fault::Truncated,
    Fault::WrongTypes,
    Fault::ServerError,
    Fault::Redirect,
    Fault::SameCursor,
    Fault::CursorBackToFirst,
    Fault::TokenRevoked,
];

impl Fault {
    /// The hostile answer in place of `good` (the document the request
    /// should have had); `id_key` names the id field of its set.
    fn answer(self, good: &Value, id_key: &str, elsewhere: &str) -> Reply {
        let json_headers = || vec![("content-type".to_owned(), "application/json".to_owned())];
        match self {
            Fault::Stall => Reply::Stall,
            Fault::Drip => Reply::Drip {
                status: 200,
                body: good.to_string().into_bytes(),
                every: Duration::from_millis(50),
            },
            Fault::Flood => Reply::Flood,
            Fault::GzipBomb => {
                let bomb = gzip_bomb(1 + 258 * 16_000);
                assert!((bomb.len() as u64) < CAP / 2, "the bomb itself is small");
                let mut headers = json_headers();
                headers.push(("content-encoding".into(), "gzip".into()));
                Reply::Raw(200, headers, bomb)
            }
            Fault::Truncated => {
                let text = good.to_string();
                Reply::Raw(
                    200,
                    json_headers(),
                    text.as_bytes()[..text.len() / 2].to_vec(),
                )
            }
            Fault::WrongTypes => {
                let mut doc = good.clone();
                let set = doc["response"]["set"].as_array_mut().unwrap();
                let id: u64 = set[0][id_key].as_str().unwrap().parse().unwrap();
                set[0][id_key] = json!(id);
                Reply::Json(200, doc)
            }
            Fault::ServerError => Reply::Raw(
                502,
                vec![("content-type".into(), "text/html".into())],
                b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
            ),
            Fault::Redirect => Reply::Raw(
                307,
                vec![(
                    "location".into(),
                    format!("{elsewhere}/nodes/1/modules/exposed/"),
                )],
                Vec::new(),
            ),
            Fault::TokenRevoked => Reply::Json(
                401,
                json!({"error": {"message": "unauthorized: token is no longer valid"}}),
            ),
            Fault::SameCursor | Fault::CursorBackToFirst => {
                unreachable!("cursor loops are answered by `paged`")
            }
        }
    }

    /// What the failure says (a part of it).
    fn says(self) -> &'static str {
        match self {
            Fault::Stall | Fault::Drip => "did not answer within 2s",
            Fault::Flood => "larger than 65536 bytes",
            Fault::GzipBomb => "not understood",
            Fault::Truncated | Fault::WrongTypes => "not understood",
            Fault::ServerError => "HTTP 502",
            Fault::Redirect => "redirects are never followed",
            // The same cursor twice, or (data from Corteza, which pages by
            // record id) a page that goes back.
            Fault::SameCursor | Fault::CursorBackToFirst => "page cursor",
            Fault::TokenRevoked => "HTTP 401",
        }
    }

    /// Whether trying again later can help.
    fn retriable(self) -> bool {
        matches!(self, Fault::Stall | Fault::Drip | Fault::ServerError)
    }

    /// The state the job is left in: only an admin can fix a revoked token.
    fn job_state(self) -> &'static str {
        match self {
            Fault::TokenRevoked => "stopped",
            _ => "retrying",
        }
    }
}

/// A peer that pages like the recorded Corteza origin (`first`, then
/// `second` for `first`'s cursor) and answers the second page with `fault`.
fn paged(
    request: &Recorded,
    fault: Fault,
    first: &str,
    second: &str,
    id_key: &str,
    elsewhere: &str,
) -> Reply {
    let body = |name: &str| fixture(name)["response"]["body"].clone();
    let cursor = request.param("pageCursor");
    let first_cursor = next_page(first);
    match (fault, cursor) {
        (_, None) => Reply::Json(200, body(first)),
        (Fault::SameCursor, Some(_)) => Reply::Json(200, body(first)),
        (Fault::CursorBackToFirst, Some(c)) if c == first_cursor => {
            // A second page that leads on to a third...
            let mut doc = body(second);
            doc["response"]["filter"]["nextPage"] = json!("c2Vjb25kLXBhZ2UtbmV4dA==");
            Reply::Json(200, doc)
        }
        // ...which is the first one again, with its cursor.
        (Fault::CursorBackToFirst, Some(_)) => Reply::Json(200, body(first)),
        (fault, Some(_)) => fault.answer(&body(second), id_key, elsewhere),
    }
}

// --------------------------------------------------------------- helpers

async fn sync_now(
    b: &TestDaemon,
    node: u64,
    kind: &str,
) -> Result<Vec<v1::SyncRun>, tonic::Status> {
    v1::sync_service_client::SyncServiceClient::new(b.channel().await)
        .sync_now(with_token(
            v1::SyncNowRequest {
                node_id: node,
                kind: kind.into(),
                no_wait: false,
            },
            &b.admin_token(),
        ))
        .await
        .map(|r| r.into_inner().runs)
}

async fn status(b: &TestDaemon, node: u64) -> v1::NodeSyncStatus {
    v1::sync_service_client::SyncServiceClient::new(b.channel().await)
        .get_sync_status(with_token(
            v1::GetSyncStatusRequest { node_id: node },
            &b.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .nodes
        .remove(0)
}

async fn shared_modules(b: &TestDaemon, node: u64) -> Vec<v1::SharedModule> {
    v1::shared_module_service_client::SharedModuleServiceClient::new(b.channel().await)
        .list_shared_modules(with_token(
            v1::ListSharedModulesRequest {
                node_id: node,
                include_removed: true,
            },
            &b.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .modules
}

/// Every record of a local module, deleted ones included, by id.
async fn records(b: &TestDaemon, module: &str) -> BTreeMap<u64, v1::Record> {
    let mut stream = v1::record_service_client::RecordServiceClient::new(b.channel().await)
        .list_records(with_token(
            v1::ListRecordsRequest {
                module: module.into(),
                include_deleted: true,
                ..Default::default()
            },
            &b.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut out = BTreeMap::new();
    while let Some(record) = stream.message().await.unwrap() {
        out.insert(record.id, record);
    }
    out
}

fn name_of(record: &v1::Record) -> String {
    record
        .values
        .iter()
        .find(|v| v.name == "name")
        .map(|v| v.values.join(","))
        .unwrap_or_default()
}

/// The local module the recorded `contact_fed` maps to, and a record of
/// B's own in it.
async fn person_module(b: &TestDaemon) -> u64 {
    cli_json(
        b,
        &[
            "module",
            "create",
            "--handle",
            "person",
            "--field",
            "name:String",
            "--field",
            "email:Email",
            "--field",
            "age:Number",
            "--field",
            "vip:Bool",
            "--field",
            "tags:String:multi",
        ],
    )
    .await;
    let own = cli_json(
        b,
        &[
            "record",
            "create",
            "person",
            "--value",
            "name=Zed (local)",
            "--value",
            "age=50",
        ],
    )
    .await;
    own["id"].as_str().unwrap().parse().unwrap()
}

/// A Corteza origin paired with `b` as node `shared_id`, answering from the
/// recorded documents; when `mapped`, its structure is synced and
/// `contact_fed` mapped to `person`.
async fn corteza_peer(b: &TestDaemon, shared_id: u64, mapped: bool) -> (FakePeer, u64) {
    let fake = FakePeer::start().await;
    let node = pair_corteza_origin_as(b, &fake, shared_id).await;
    fake.handle(corteza_origin);
    if mapped {
        let runs = sync_now(b, node, "structure").await.unwrap();
        assert_eq!(runs[0].status, "succeeded", "{runs:?}");
        let node = node.to_string();
        cli_json(
            b,
            &[
                "map",
                "set",
                &node,
                "contact_fed",
                "--to",
                "person",
                "--field",
                "name=name",
                "--field",
                "email=email",
                "--field",
                "age=age",
                "--field",
                "vip=vip",
                "--field",
                "tags=tags",
            ],
        )
        .await;
    }
    (fake, node)
}

/// Node ids the fakes claim (one per peer of B).
fn corteza_id(i: usize) -> u64 {
    523615093115650149 + 1000 + i as u64
}

/// Every flood was cut off near the cap: the connection was closed, not
/// read on and on (what the fake sent beyond the cap sits in the loopback
/// socket buffers).
async fn assert_floods_cut_off(fakes: &[FakePeer]) {
    assert!(
        fakes.iter().any(|f| f.flooded() >= CAP),
        "a flood was sent and read up to the cap"
    );
    for fake in fakes {
        until("the flooded connection is closed", || {
            fake.floods_open() == 0
        })
        .await;
        assert!(
            fake.flooded() < 32 * 1024 * 1024,
            "{} bytes were taken",
            fake.flooded()
        );
    }
}

/// Broken answers to a pairing request: (what, answer, what the failure
/// says, whether it is worth retrying).
fn pairing_cases(
    elsewhere: &FakePeer,
    except: &[Fault],
) -> Vec<(String, Reply, &'static str, bool)> {
    let success = json!({"success": {"message": "OK"}, "padding": "x".repeat(200)});
    let mut cases: Vec<(String, Reply, &str, bool)> = ANSWER_FAULTS
        .iter()
        .filter(|f| !matches!(f, Fault::WrongTypes) && !except.contains(f))
        .map(|f| {
            let reply = match f {
                Fault::Truncated | Fault::Drip => f.answer(&success, "", &elsewhere.base_url()),
                _ => f.answer(
                    &json!({"response": {"set": [{"moduleID": "1"}]}}),
                    "moduleID",
                    &elsewhere.base_url(),
                ),
            };
            (format!("{f:?}"), reply, f.says(), f.retriable())
        })
        .collect();
    cases.push((
        "error of the wrong type".into(),
        Reply::Json(200, json!({"error": 42})),
        "not understood",
        false,
    ));
    cases.push((
        "an array".into(),
        Reply::Json(200, json!([1, 2, 3])),
        "not understood",
        false,
    ));
    cases
}

// ----------------------------------------------------------------- tests

#[tokio::test]
async fn a_broken_inviter_fails_the_pairing_in_time_and_a_healthy_pairing_goes_on() {
    let mut b = node_b().await;
    let elsewhere = FakePeer::start().await;
    // Redirects: corteza_wire.rs.
    let cases = pairing_cases(&elsewhere, &[Fault::Redirect]);
    let mut fakes = Vec::new();
    let mut attempts = Vec::new();
    for (i, (what, reply, says, retriable)) in cases.into_iter().enumerate() {
        let fake = FakePeer::start().await;
        fake.reply(reply);
        let uri = format!(
            "http://{}:Corteza0Pair0Token0Abcdefghij123@{}/federation?name=hostile",
            corteza_id(i),
            fake.addr
        );
        let id = add_node_uri(&b, uri).await;
        let mut nodes = b.nodes().await;
        let token = b.admin_token();
        let label = what.clone();
        attempts.push((
            what,
            says,
            retriable,
            id,
            tokio::spawn(async move {
                within(&label, pairing_bound(), async {
                    nodes
                        .pair_node(with_token(v1::NodeRef { id }, &token))
                        .await
                })
                .await
            }),
        ));
        fakes.push(fake);
    }

    // Meanwhile a well-behaved Corteza pairs and its structure syncs.
    let (_healthy, healthy_node) = within("the healthy peer", TIMEOUT, async {
        let (fake, node) = corteza_peer(&b, 523615093115650149, false).await;
        let runs = sync_now(&b, node, "structure").await.unwrap();
        assert_eq!(runs[0].status, "succeeded", "{runs:?}");
        (fake, node)
    })
    .await
    .0;
    assert_eq!(b.node(healthy_node).await.status, "paired");
    let stalled = attempts.iter().find(|(what, ..)| what == "Stall").unwrap();
    assert!(
        !stalled.4.is_finished(),
        "the healthy peer paired and synced while a hostile one still hung"
    );

    for (what, says, retriable, id, attempt) in attempts {
        let (result, took) = attempt.await.unwrap();
        let err = result.expect_err(&what);
        assert!(err.message().contains(says), "{what}: {}", err.message());
        let node = b.node(id).await;
        assert_eq!(node.status, "failed", "{what}");
        assert!(
            node.status_reason.contains(says),
            "{what}: {}",
            node.status_reason
        );
        assert_eq!(
            node.status_reason.contains("retry with `fedsync node pair"),
            retriable,
            "{what}: {}",
            node.status_reason
        );
        assert!(took <= pairing_bound(), "{what}: {took:?}");
    }
    for fake in &fakes {
        assert_eq!(fake.requests().len(), 1, "one request, no retry loop");
        let sent = &fake.requests()[0];
        assert!(
            sent.header("accept-encoding").is_none(),
            "we never ask for a compressed answer: {:?}",
            sent.headers
        );
    }
    assert_floods_cut_off(&fakes).await;
    b.stop().await;
}

/// Runs `sync now` of `kind` for every hostile node at once and, meanwhile,
/// `healthy`; checks the healthy work ended while the stalled peer still
/// held its attempt. Returns each fault's outcome and how long it took.
async fn hostile_round<H: Future<Output = ()>>(
    b: &TestDaemon,
    kind: &str,
    hostile: &[(Fault, u64)],
    healthy: H,
) -> Vec<(Fault, Result<Vec<v1::SyncRun>, tonic::Status>, Duration)> {
    let done = std::sync::Mutex::new(Vec::new());
    let attempts = futures::future::join_all(hostile.iter().map(|&(fault, node)| {
        let done = &done;
        async move {
            let (outcome, took) = within(
                &format!("{fault:?} {kind} sync"),
                attempt_bound(),
                sync_now(b, node, kind),
            )
            .await;
            done.lock().unwrap().push(fault);
            (fault, outcome, took)
        }
    }));
    let meanwhile = async {
        within("the healthy peer's sync", attempt_bound(), healthy).await;
        let finished = done.lock().unwrap().clone();
        assert!(
            !finished.contains(&Fault::Stall),
            "the healthy peer synced while the stalled one still held its attempt ({finished:?} had ended)"
        );
    };
    let (outcomes, ()) = tokio::join!(attempts, meanwhile);
    outcomes
}

/// The outcome of one hostile attempt: a failed run that says why, in
/// time, and the job left retrying or stopped as the fault deserves.
async fn assert_failed(
    b: &TestDaemon,
    kind: &str,
    fault: Fault,
    node: u64,
    outcome: &Result<Vec<v1::SyncRun>, tonic::Status>,
    took: Duration,
) {
    let runs = outcome
        .as_ref()
        .unwrap_or_else(|e| panic!("{fault:?}: {e:?}"));
    assert_eq!(runs.len(), 1, "{fault:?}: {runs:?}");
    let run = &runs[0];
    assert_eq!(run.status, "failed", "{fault:?}: {run:?}");
    assert!(run.error.contains(fault.says()), "{fault:?}: {}", run.error);
    assert!(took <= attempt_bound(), "{fault:?}: {took:?}");
    let status = status(b, node).await;
    let job = status
        .jobs
        .iter()
        .find(|j| j.kind == kind)
        .unwrap_or_else(|| panic!("{fault:?}: no {kind} job: {status:?}"));
    assert_eq!(job.state, fault.job_state(), "{fault:?}: {job:?}");
    assert!(job.last_error.contains(fault.says()), "{fault:?}: {job:?}");
    if fault == Fault::TokenRevoked {
        assert!(job.stop_reason.contains("re-pair"), "{job:?}");
    }
}

/// Requests for the page after the first (the one that misbehaves): three
/// tries of what may pass, one of what will not.
fn assert_tries(fault: Fault, fake: &FakePeer, since: usize, is_page: impl Fn(&Recorded) -> bool) {
    if matches!(fault, Fault::SameCursor | Fault::CursorBackToFirst) {
        return;
    }
    let tries = fake.requests()[since..]
        .iter()
        .filter(|r| is_page(r) && r.param("pageCursor").is_some())
        .count();
    let expected = if fault.retriable() { 3 } else { 1 };
    assert_eq!(
        tries,
        expected,
        "{fault:?}: tries of the bad page: {:?}",
        fake.requests()[since..]
            .iter()
            .map(|r| (&r.path, &r.query))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_hostile_origin_fails_structure_sync_in_time_and_changes_no_shared_module() {
    let mut b = node_b().await;
    let elsewhere = FakePeer::start().await;
    let (_healthy, g) = corteza_peer(&b, corteza_id(100), false).await;
    let runs = sync_now(&b, g, "structure").await.unwrap();
    assert_eq!(runs[0].status, "succeeded", "{runs:?}");
    let g_before = shared_modules(&b, g).await;
    assert_eq!(g_before.len(), 2);
    // Every hostile peer first behaves (the recorded structure lands), then
    // misbehaves on the second page. They claim the same module ids as the
    // healthy peer.
    let mut hostile = Vec::new();
    let mut fakes = Vec::new();
    let mut seen = Vec::new();
    for (i, fault) in PAGED_FAULTS.into_iter().enumerate() {
        let (fake, node) = corteza_peer(&b, corteza_id(i), false).await;
        let runs = sync_now(&b, node, "structure").await.unwrap();
        assert_eq!(runs[0].status, "succeeded", "{runs:?}");
        let redirect = elsewhere.base_url();
        fake.handle(move |r| {
            r.is_structure().then(|| {
                paged(
                    r,
                    fault,
                    "049-peer-structure-limit1.json",
                    "050-peer-structure-limit1-page2.json",
                    "moduleID",
                    &redirect,
                )
            })
        });
        hostile.push((fault, node));
        seen.push(fake.requests().len());
        fakes.push(fake);
    }
    let mut before = Vec::new();
    for &(_, node) in &hostile {
        before.push(shared_modules(&b, node).await);
    }
    assert_eq!(before[0].len(), 2, "both recorded modules: {:?}", before[0]);

    let healthy = async {
        let runs = sync_now(&b, g, "structure").await.unwrap();
        assert_eq!(runs[0].status, "succeeded", "{runs:?}");
    };
    let outcomes = hostile_round(&b, "structure", &hostile, healthy).await;

    for (i, (fault, outcome, took)) in outcomes.iter().enumerate() {
        let node = hostile[i].1;
        assert_failed(&b, "structure", *fault, node, outcome, *took).await;
        assert_tries(*fault, &fakes[i], seen[i], Recorded::is_structure);
        assert_eq!(
            shared_modules(&b, node).await,
            before[i],
            "{fault:?}: a failed pull changes nothing"
        );
    }
    assert_eq!(
        shared_modules(&b, g).await,
        g_before,
        "the healthy peer's modules, whose ids the others claim, are as they were"
    );
    assert_floods_cut_off(&fakes).await;
    assert!(elsewhere.requests().is_empty(), "no redirect was followed");
    b.stop().await;
}

#[tokio::test]
async fn a_hostile_origin_fails_data_sync_in_time_and_touches_no_other_record() {
    let mut b = node_b().await;
    let elsewhere = FakePeer::start().await;
    let own = person_module(&b).await;
    let (_healthy, g) = corteza_peer(&b, corteza_id(100), true).await;
    let runs = sync_now(&b, g, "data").await.unwrap();
    assert_eq!((runs[0].status.as_str(), runs[0].created), ("succeeded", 3));
    let mut hostile = Vec::new();
    let mut fakes = Vec::new();
    for (i, fault) in PAGED_FAULTS.into_iter().enumerate() {
        let (fake, node) = corteza_peer(&b, corteza_id(i), true).await;
        let redirect = elsewhere.base_url();
        fake.handle(move |r| {
            if r.is_records() {
                Some(paged(
                    r,
                    fault,
                    "098-fx-peer-records-limit2.json",
                    "099-fx-peer-records-limit2-page2.json",
                    "recordID",
                    &redirect,
                ))
            } else {
                corteza_origin(r)
            }
        });
        hostile.push((fault, node));
        fakes.push(fake);
    }
    let before = records(&b, "person").await;
    assert_eq!(
        before.len(),
        4,
        "B's own record and the healthy peer's three"
    );
    assert!(before.contains_key(&own));

    let healthy = async {
        let runs = sync_now(&b, g, "data").await.unwrap();
        assert_eq!(
            (runs[0].status.as_str(), runs[0].skipped),
            ("succeeded", 3),
            "{runs:?}"
        );
    };
    let outcomes = hostile_round(&b, "data", &hostile, healthy).await;
    for ((fault, outcome, took), ((_, node), fake)) in
        outcomes.iter().zip(hostile.iter().zip(&fakes))
    {
        assert_failed(&b, "data", *fault, *node, outcome, *took).await;
        assert_tries(*fault, fake, 0, Recorded::is_records);
    }

    // What was here is as it was, to the timestamp; what came from a
    // hostile peer is what its good pages carried, once.
    let after = records(&b, "person").await;
    for (id, record) in &before {
        assert_eq!(after.get(id), Some(record), "record {id} changed");
    }
    for &(fault, node) in &hostile {
        let mut names: Vec<String> = after
            .values()
            .filter(|r| r.origin_node_id == node)
            .map(name_of)
            .collect();
        names.sort();
        let expected: &[&str] = match fault {
            // The second page, read before the loop showed.
            Fault::CursorBackToFirst => &["Alice", "Bob", "Carol"],
            _ => &["Alice", "Bob"],
        };
        assert_eq!(names, expected, "{fault:?}");
    }
    assert_eq!(
        after.len(),
        before.len() + 2 * hostile.len() + 1,
        "nothing else arrived"
    );
    assert_floods_cut_off(&fakes).await;
    assert!(elsewhere.requests().is_empty(), "no redirect was followed");
    b.stop().await;
}

/// A records page of `set`, shaped like Corteza's.
fn records_doc(set: Vec<Value>) -> Value {
    json!({"response": {"filter": {"sort": "ID", "limit": 100}, "set": set}})
}

fn record(id: u64, name: &str, deleted: bool) -> Value {
    let mut r = json!({
        "recordID": id.to_string(),
        "moduleID": "523615093117091941",
        "revision": 1,
        "values": [{"name": "name", "value": name}, {"name": "age", "value": "99"}],
        "createdAt": "2026-11-22T07:00:00Z",
    });
    if deleted {
        r["deletedAt"] = json!("2026-11-22T07:30:00Z");
    }
    r
}

#[tokio::test]
async fn records_claiming_ids_of_another_pair_or_of_local_records_never_overwrite_them() {
    let mut b = node_b().await;
    let own = person_module(&b).await;
    let (_healthy, g) = corteza_peer(&b, corteza_id(100), true).await;
    let runs = sync_now(&b, g, "data").await.unwrap();
    assert_eq!((runs[0].status.as_str(), runs[0].created), ("succeeded", 3));
    // The hostile peer exposes the same module id as the healthy one.
    let (hostile, h) = corteza_peer(&b, corteza_id(0), true).await;
    let before = records(&b, "person").await;
    let copy = |name: &str| {
        *before
            .iter()
            .find(|(_, r)| name_of(r) == name && r.origin_node_id == g)
            .unwrap()
            .0
    };
    let page = fixture("100-fx-peer-records-nolimit.json");
    let origin_id = |i: usize| -> u64 {
        page["response"]["body"]["response"]["set"][i]["recordID"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (alice, bob, carol) = (origin_id(0), origin_id(1), origin_id(2));
    // Ids of the other pair's origin records, of its local copies, and of
    // B's own record: as new records, as updates and as deletes.
    let (copy_bob, copy_carol) = (copy("Bob"), copy("Carol"));
    let claims = move |round: &str| {
        records_doc(vec![
            record(
                alice,
                &format!("Mallory {round} as Alice's origin id"),
                false,
            ),
            record(own, &format!("Mallory {round} as a local id"), false),
            record(copy_bob, &format!("Mallory {round} as a copy's id"), false),
            record(bob, "", true),
            record(carol, "", true),
            record(copy_carol, "", true),
        ])
    };
    hostile.handle(move |r| {
        if r.is_records() {
            Some(Reply::Json(
                200,
                claims(if r.param("lastSync").is_some() {
                    "again"
                } else {
                    "first"
                }),
            ))
        } else {
            corteza_origin(r)
        }
    });
    let runs = sync_now(&b, h, "data").await.unwrap();
    assert_eq!(
        (
            runs[0].status.as_str(),
            runs[0].created,
            runs[0].updated,
            runs[0].deleted,
            runs[0].skipped
        ),
        ("succeeded", 3, 0, 0, 3),
        "three new records; deletes of records it never sent are ignored: {runs:?}"
    );
    // The same ids again, with new values: only its own copies change.
    let runs = sync_now(&b, h, "data").await.unwrap();
    assert_eq!(
        (runs[0].created, runs[0].updated, runs[0].deleted),
        (0, 3, 0),
        "{runs:?}"
    );
    // And the healthy peer's next pull still finds its copies.
    let runs = sync_now(&b, g, "data").await.unwrap();
    assert_eq!(
        (runs[0].status.as_str(), runs[0].created, runs[0].skipped),
        ("succeeded", 0, 3),
        "{runs:?}"
    );

    let after = records(&b, "person").await;
    for (id, record) in &before {
        assert_eq!(after.get(id), Some(record), "record {id} changed");
    }
    let mut theirs: Vec<(String, bool)> = after
        .values()
        .filter(|r| !before.contains_key(&r.id))
        .map(|r| {
            assert_eq!(r.origin_node_id, h, "{r:?}");
            (name_of(r), r.deleted_at.is_some())
        })
        .collect();
    theirs.sort();
    assert_eq!(
        theirs,
        [
            ("Mallory again as Alice's origin id".to_owned(), false),
            ("Mallory again as a copy's id".to_owned(), false),
            ("Mallory again as a local id".to_owned(), false),
        ]
    );
    assert!(
        !after.contains_key(&alice) && !after.contains_key(&bob),
        "an origin id never becomes a local id"
    );
    b.stop().await;
}

/// Pages with no record and a fresh cursor each time: a loop no cursor
/// set can see.
fn endless(request: &Recorded, first: &str, counter: &std::sync::atomic::AtomicU64) -> Reply {
    match request.param("pageCursor") {
        None => Reply::Json(200, fixture(first)["response"]["body"].clone()),
        Some(_) => {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Reply::Json(
                200,
                json!({"response": {"filter": {"nextPage": format!("fresh-cursor-{n}")}, "set": []}}),
            )
        }
    }
}

#[tokio::test]
async fn an_origin_that_pages_on_and_on_without_records_is_cut_off() {
    let mut b = node_b().await;
    person_module(&b).await;
    let (structure, s_node) = corteza_peer(&b, corteza_id(0), false).await;
    let (data, d_node) = corteza_peer(&b, corteza_id(1), true).await;
    let pages = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = pages.clone();
    structure.handle(move |r| {
        r.is_structure()
            .then(|| endless(r, "049-peer-structure-limit1.json", &counter))
    });
    let counter = pages.clone();
    data.handle(move |r| {
        if r.is_records() {
            Some(endless(r, "098-fx-peer-records-limit2.json", &counter))
        } else {
            corteza_origin(r)
        }
    });
    for (kind, node) in [("structure", s_node), ("data", d_node)] {
        let (runs, took) = within(
            &format!("an endless {kind} pull"),
            attempt_bound(),
            sync_now(&b, node, kind),
        )
        .await;
        let runs = runs.unwrap();
        assert_eq!(runs[0].status, "failed", "{kind}: {runs:?}");
        assert!(
            runs[0].error.contains("a page cursor but no"),
            "{kind}: {}",
            runs[0].error
        );
        assert!(took <= attempt_bound());
        let job = status(&b, node)
            .await
            .jobs
            .into_iter()
            .find(|j| j.kind == kind)
            .unwrap();
        assert_eq!(job.state, "retrying", "{job:?}");
    }
    assert_eq!(
        pages.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one empty page each, no more"
    );
    // What the good first page brought stays, once.
    let names: Vec<String> = records(&b, "person")
        .await
        .values()
        .filter(|r| r.origin_node_id == d_node)
        .map(name_of)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    b.stop().await;
}

#[tokio::test]
async fn a_broken_invitee_fails_the_confirmation_in_time_and_its_token_is_void() {
    let mut a = node_b().await;
    let elsewhere = FakePeer::start().await;
    let mut cases = pairing_cases(&elsewhere, &[]);
    cases.push((
        "TokenRevoked".into(),
        Fault::TokenRevoked.answer(&Value::Null, "", ""),
        Fault::TokenRevoked.says(),
        false,
    ));
    let mut fakes = Vec::new();
    let mut attempts = Vec::new();
    for (what, reply, says, _) in cases {
        // The invitee (a Corteza B) sends its handshake request to A; A's
        // admin confirms and A completes to it, which answers `reply`.
        let fake = FakePeer::start().await;
        fake.reply(reply);
        let created = a
            .nodes()
            .await
            .create_node(with_token(
                v1::CreateNodeRequest {
                    name: what.clone(),
                    base_url: fake.base_url(),
                    contact: String::new(),
                },
                &a.admin_token(),
            ))
            .await
            .unwrap()
            .into_inner();
        let id = created.node.unwrap().id;
        let ott = fedsync::pairing::parse_node_uri(&created.node_uri, true)
            .unwrap()
            .token
            .to_string();
        let init = crate::common::http()
            .post(a.federation_url(&format!("/federation/nodes/{id}/handshake")))
            .json(&json!({"authToken": "corteza-token-for-a", "pairToken": ott, "sharedNodeID": id.to_string()}))
            .send()
            .await
            .unwrap();
        assert_eq!(init.status(), 200);
        let mut nodes = a.nodes().await;
        let token = a.admin_token();
        let label = what.clone();
        attempts.push((
            what,
            says,
            id,
            tokio::spawn(async move {
                within(&label, pairing_bound(), async {
                    nodes
                        .confirm_node(with_token(v1::NodeRef { id }, &token))
                        .await
                })
                .await
            }),
        ));
        fakes.push(fake);
    }
    // Meanwhile a well-behaved Corteza invitee is confirmed.
    let healthy = FakePeer::start().await;
    let (healthy_node, _) = within(
        "the healthy invitee",
        pairing_bound(),
        crate::common::pair_corteza_destination(&a, &healthy),
    )
    .await
    .0;
    assert_eq!(a.node(healthy_node).await.status, "paired");
    assert!(
        !attempts
            .iter()
            .find(|(w, ..)| w == "Stall")
            .unwrap()
            .3
            .is_finished(),
        "the healthy invitee was confirmed while a hostile one still hung"
    );

    for ((what, says, id, attempt), fake) in attempts.into_iter().zip(&fakes) {
        let (result, took) = attempt.await.unwrap();
        let err = result.expect_err(&what);
        assert!(err.message().contains(says), "{what}: {}", err.message());
        assert!(took <= pairing_bound(), "{what}: {took:?}");
        let node = a.node(id).await;
        assert_eq!(node.status, "failed", "{what}");
        let next_step = if what == "TokenRevoked" {
            "generate a new node URI"
        } else {
            "retry with `fedsync node confirm"
        };
        assert!(
            node.status_reason.contains(says) && node.status_reason.contains(next_step),
            "{what}: {}",
            node.status_reason
        );
        // The token A sent along is void: the peer cannot call A with it.
        let sent = fake.requests()[0].json()["authToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let probe = crate::common::http()
            .get(a.federation_url(&format!("/federation/nodes/{id}/modules/exposed/")))
            .bearer_auth(&sent)
            .send()
            .await
            .unwrap();
        assert_eq!(probe.status(), 401, "{what}");
    }
    assert_floods_cut_off(&fakes).await;
    assert!(elsewhere.requests().is_empty(), "no redirect was followed");
    a.stop().await;
}

async fn schedule_structure(b: &TestDaemon, node: u64, every: &str) {
    v1::sync_service_client::SyncServiceClient::new(b.channel().await)
        .set_schedule(with_token(
            v1::SetScheduleRequest {
                node_id: node,
                structure: Some(every.into()),
                data: None,
            },
            &b.admin_token(),
        ))
        .await
        .unwrap();
}

/// Polls `sync status` of `node` until `done` holds (at most `bound`).
async fn status_until(
    b: &TestDaemon,
    node: u64,
    bound: Duration,
    done: impl Fn(&v1::NodeSyncStatus) -> bool,
) -> v1::NodeSyncStatus {
    let deadline = Instant::now() + bound;
    loop {
        let status = status(b, node).await;
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {status:?}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn hanging_peers_holding_every_worker_slot_delay_a_healthy_one_by_one_attempt_at_most() {
    // Two worker slots, both taken by peers that never answer.
    let mut b = spawn_node_with("B", |o| {
        o.set("federation.peer_request_timeout", "2s")
            .set("sync.max_concurrent", 2)
            .set("sync.retry_base", "8760h")
            .set("sync.retry_cap", "8760h");
    })
    .await;
    let mut hanging = Vec::new();
    for i in 0..2 {
        let (fake, node) = corteza_peer(&b, corteza_id(i), false).await;
        fake.handle(|r| r.is_structure().then_some(Reply::Stall));
        schedule_structure(&b, node, "1s").await;
        hanging.push((fake, node));
    }
    for (_, node) in &hanging {
        status_until(&b, *node, Duration::from_secs(30), |s| {
            s.jobs
                .iter()
                .any(|j| j.kind == "structure" && j.state == "running")
        })
        .await;
    }
    let (_healthy, g) = corteza_peer(&b, corteza_id(100), false).await;
    let start = Instant::now();
    schedule_structure(&b, g, "1s").await;
    // Due in a second, it waits for a slot: the hanging attempts end on
    // their timeouts, and then it runs. The dispatcher wakes at least every
    // 5 s.
    let bound = attempt_bound() + Duration::from_secs(1 + 5);
    status_until(&b, g, bound, |s| s.structure_status == "synced").await;
    let took = start.elapsed();
    assert!(took <= bound, "{took:?}");
    for (fake, node) in &hanging {
        let status = status_until(&b, *node, attempt_bound(), |s| {
            s.jobs
                .iter()
                .any(|j| j.kind == "structure" && j.state == "retrying")
        })
        .await;
        let job = status.jobs.iter().find(|j| j.kind == "structure").unwrap();
        assert!(
            job.last_error.contains("did not answer within 2s"),
            "{job:?}"
        );
        assert_eq!(
            fake.requests().iter().filter(|r| r.is_structure()).count(),
            3,
            "one attempt of three tries, then the backoff"
        );
    }
    b.stop().await;
}

#[tokio::test]
async fn values_a_peer_gets_wrong_are_reported_and_never_written() {
    let mut b = node_b().await;
    person_module(&b).await;
    let (_healthy, g) = corteza_peer(&b, corteza_id(100), true).await;
    sync_now(&b, g, "data").await.unwrap();
    let (hostile, h) = corteza_peer(&b, corteza_id(0), true).await;
    let before = records(&b, "person").await;

    // Values of the right JSON type that do not fit the fields, and a
    // name repeated 1,500 times on a single-value field.
    let mut odd = record(901, "Odd", false);
    odd["values"] = json!([
        {"name": "name", "value": "Odd"},
        {"name": "age", "value": "forty-two"},
        {"name": "vip", "value": "maybe"},
        {"name": "email", "value": "not an address"},
    ]);
    let mut many = record(902, "Many", false);
    many["values"] = Value::Array(
        (0..1_500)
            .map(|i| json!({"name": "name", "value": format!("n{i}")}))
            .collect(),
    );
    let page = records_doc(vec![odd, many]);
    assert!((page.to_string().len() as u64) < CAP);
    hostile.reply(Reply::Json(200, page));
    let runs = sync_now(&b, h, "data").await.unwrap();
    let run = &runs[0];
    assert_eq!(
        (run.status.as_str(), run.created, run.errors),
        ("succeeded", 2, 3),
        "{run:?}"
    );
    let errors = v1::sync_service_client::SyncServiceClient::new(b.channel().await)
        .list_run_errors(with_token(
            v1::ListRunErrorsRequest { run_id: run.id },
            &b.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .errors;
    let mut said: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
    said.sort();
    assert!(
        errors.iter().all(|e| e.origin_record_id == 901),
        "{errors:?}"
    );
    assert!(
        said[0].contains("age -> age") && said[0].contains("not a number"),
        "{said:?}"
    );
    assert!(said[1].contains("email -> email"), "{said:?}");
    assert!(said[2].contains("vip -> vip"), "{said:?}");
    let after = records(&b, "person").await;
    let theirs: Vec<&v1::Record> = after.values().filter(|r| r.origin_node_id == h).collect();
    let odd = theirs.iter().find(|r| name_of(r) == "Odd").unwrap();
    assert_eq!(odd.values.len(), 1, "only the value that fits: {odd:?}");
    let many = theirs.iter().find(|r| name_of(r).starts_with('n')).unwrap();
    assert_eq!(name_of(many), "n0", "a single-value field keeps one value");

    // Values of the wrong JSON type, or a date that is none: the page is
    // refused whole.
    let mut number = record(903, "Number", false);
    number["values"][1]["value"] = json!(42);
    let mut date = record(904, "Date", false);
    date["updatedAt"] = json!("yesterday");
    for (what, bad, says) in [
        ("a number value", number, "invalid type"),
        ("a date that is none", date, "not RFC 3339"),
    ] {
        hostile.reply(Reply::Json(
            200,
            records_doc(vec![record(905, "Fine", false), bad]),
        ));
        let runs = sync_now(&b, h, "data").await.unwrap();
        assert_eq!(runs[0].status, "failed", "{what}: {runs:?}");
        assert!(runs[0].error.contains(says), "{what}: {}", runs[0].error);
    }
    let last = records(&b, "person").await;
    assert_eq!(last, after, "nothing of a refused page was written");
    for (id, record) in &before {
        assert_eq!(last.get(id), Some(record), "record {id} changed");
    }
    b.stop().await;
}

/// The recorded first page (`first`) again and again, each time with a
/// fresh cursor: a loop back to page 1 that no set of seen cursors can
/// catch.
fn back_to_the_start(
    request: &Recorded,
    first: &str,
    counter: &std::sync::atomic::AtomicU64,
) -> Reply {
    let mut doc = fixture(first)["response"]["body"].clone();
    if request.param("pageCursor").is_some() {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        doc["response"]["filter"]["nextPage"] = json!(format!("fresh-cursor-{n}"));
    }
    Reply::Json(200, doc)
}

#[tokio::test]
async fn an_origin_whose_fresh_cursors_lead_back_to_the_start_is_cut_off() {
    let mut b = node_b().await;
    person_module(&b).await;
    let (fake, node) = corteza_peer(&b, corteza_id(0), true).await;
    let pages = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = pages.clone();
    fake.handle(move |r| {
        if r.is_records() {
            Some(back_to_the_start(
                r,
                "098-fx-peer-records-limit2.json",
                &counter,
            ))
        } else if r.is_structure() {
            Some(back_to_the_start(
                r,
                "049-peer-structure-limit1.json",
                &counter,
            ))
        } else {
            corteza_origin(r)
        }
    });
    let held = shared_modules(&b, node).await;
    let (runs, _) = within(
        "a looping structure pull",
        attempt_bound(),
        sync_now(&b, node, "structure"),
    )
    .await;
    let runs = runs.unwrap();
    assert_eq!(runs[0].status, "failed", "{runs:?}");
    assert!(
        runs[0]
            .error
            .contains("went back from module 523615093121024101 to 523615093121024101"),
        "{}",
        runs[0].error
    );
    assert_eq!(runs[0].pages, 2, "{runs:?}");
    assert_eq!(shared_modules(&b, node).await, held);
    let (runs, _) = within(
        "a looping data pull",
        attempt_bound(),
        sync_now(&b, node, "data"),
    )
    .await;
    let runs = runs.unwrap();
    assert_eq!(runs[0].status, "failed", "{runs:?}");
    assert!(
        runs[0]
            .error
            .contains("went back from record 523615093120368741 to 523615093120041061"),
        "{}",
        runs[0].error
    );
    assert_eq!(runs[0].pages, 2, "{runs:?}");
    assert_eq!(
        pages.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one page past the start each"
    );
    let job = status(&b, node)
        .await
        .jobs
        .into_iter()
        .find(|j| j.kind == "data")
        .unwrap();
    assert_eq!(job.state, "retrying", "{job:?}");
    let mut names: Vec<String> = records(&b, "person")
        .await
        .values()
        .filter(|r| r.origin_node_id == node)
        .map(name_of)
        .collect();
    names.sort();
    assert_eq!(names, ["Alice", "Bob"], "the first page, once");
    b.stop().await;
}
