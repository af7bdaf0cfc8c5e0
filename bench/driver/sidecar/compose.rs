//! A fake Corteza compose API for the sidecar bench: an HTTP server on a
//! loopback port of its own, on a runtime of its own (two threads), that
//! answers what fedsync's sidecar (`src/adapters/corteza/`) asks: a
//! namespace by slug or id; modules listed, read, made, changed, removed;
//! records made, changed, removed (soft), read, and listed with `deleted`,
//! `meta` (`key=value`, all must match), `query`, `sort`, `limit`,
//! `pageCursor` and `incTotal` (see `query`), each request held until its
//! worker time is over (see `model`) and counted by kind.
//!
//! Adapted from the tests' fake (`tests/integration/common/fake_corteza/`),
//! not shared with it: that one serves tests (outages, refusals, a clock
//! moving a second per change, every request kept) and reads a fixture
//! from disk per object; this one keeps records typed, is stamped by the
//! wall clock like a Corteza beside fedsync, and takes a general query
//! language. The answers are built the same way, on the payloads recorded
//! from a real Corteza (`tests/fixtures/corteza-wire/`: a namespace 013, a
//! module 014, a record 015, a deletion 108), read once.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::model::{Counts, Kind, Workers};
use super::routes::route;
use super::world::{Rec, World, now, recorded, stamp};
use crate::Result;

/// The fake, running; stops when dropped.
pub(super) struct FakeCompose {
    pub(super) addr: SocketAddr,
    world: Arc<Mutex<World>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeCompose {
    /// On a free loopback port, accepting `tokens`, each the token of a
    /// client whose requests are counted apart (`counts`).
    pub(super) fn start(tokens: &[(&str, &'static str)]) -> Result<FakeCompose> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let world = Arc::new(Mutex::new(World {
            tokens: tokens
                .iter()
                .map(|(t, who)| ((*t).to_owned(), *who))
                .collect(),
            next_id: 523_700_000_000_000_001,
            recorded: recorded()?,
            namespaces: Vec::new(),
            modules: Vec::new(),
            records: HashMap::new(),
            workers: Workers::new(),
            counts: BTreeMap::new(),
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(world.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fake-compose")
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("fake-compose".into())
            .spawn(move || {
                runtime.block_on(async move {
                    use axum::serve::ListenerExt;
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(FakeCompose {
            addr,
            world,
            _stop: stop,
        })
    }

    /// fedsync's `local.corteza_url`.
    pub(super) fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The URL of a record list (or, with an id, of one record).
    pub(super) fn records_url(&self, namespace: u64, module: u64) -> String {
        format!(
            "{}/compose/namespace/{namespace}/module/{module}/record/",
            self.api_url()
        )
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A namespace; returns its id.
    pub(super) fn add_namespace(&self, name: &str, slug: &str) -> u64 {
        let mut w = self.world();
        let id = w.next();
        let mut ns = w.recorded.namespace.clone();
        ns["namespaceID"] = json!(id.to_string());
        ns["name"] = json!(name);
        ns["slug"] = json!(slug);
        ns["createdAt"] = json!(stamp(now()));
        w.namespaces.push(ns);
        id
    }

    /// A module with `fields` (name, Corteza kind); returns its id.
    pub(super) fn add_module(&self, namespace: u64, handle: &str, fields: &[(&str, &str)]) -> u64 {
        let body = json!({
            "name": handle,
            "handle": handle,
            "fields": fields.iter().map(|(name, kind)| json!({"name": name, "kind": kind, "label": name})).collect::<Vec<_>>(),
        });
        let mut w = self.world();
        let module = w.make_module(&namespace.to_string(), &body, None);
        let id = module["moduleID"].as_str().and_then(|i| i.parse().ok());
        w.modules.push(module);
        id.unwrap_or_default()
    }

    /// Records made as an import makes them, `per_second` a second, the
    /// last `ago` seconds back: returns one of their ids. Not counted.
    pub(super) fn seed(
        &self,
        module: u64,
        values: impl Iterator<Item = Value>,
        per_second: u64,
        ago: i64,
    ) -> u64 {
        let values: Vec<Value> = values.collect();
        let n = values.len() as u64;
        let end = now() - ago;
        let mut w = self.world();
        let mut last = 0;
        for (i, values) in values.into_iter().enumerate() {
            let id = w.next();
            let created = end - ((n - 1 - i as u64) / per_second.max(1)) as i64;
            w.records.entry(module).or_default().insert(
                id,
                Rec {
                    id,
                    values,
                    meta: json!({}),
                    created,
                    updated: None,
                    deleted: None,
                    revision: 1,
                },
            );
            last = id;
        }
        last
    }

    /// A live module's id by its handle.
    pub(super) fn module_id(&self, handle: &str) -> Option<u64> {
        self.world()
            .modules
            .iter()
            .find(|m| m["handle"] == handle && m["deletedAt"].is_null())
            .and_then(|m| m["moduleID"].as_str()?.parse().ok())
    }

    /// The requests of client `who` so far, by kind.
    pub(super) fn counts(&self, who: &str) -> Counts {
        self.world().counts.get(who).cloned().unwrap_or_default()
    }

    /// Records of a module: (live, removed).
    pub(super) fn records(&self, module: u64) -> (usize, usize) {
        let w = self.world();
        let all = w.records.get(&module);
        let removed = all.map_or(0, |r| r.values().filter(|r| r.deleted.is_some()).count());
        (all.map_or(0, BTreeMap::len) - removed, removed)
    }
}

async fn handle(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let arrived = tokio::time::Instant::now();
    let (status, answer, done) = {
        let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let who = w.tokens.get(token).copied();
        if !w.workers.admit(arrived) {
            let counts = w.counts.entry(who.unwrap_or("unknown")).or_default();
            *counts.requests.entry(Kind::TooMany).or_default() += 1;
            drop(w);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"error": {"message": "too many requests"}})),
            )
                .into_response();
        }
        let (kind, status, answer, listed, counted) = if who.is_none() {
            let answer = json!({"error": {"message": "unauthorized"}});
            (Kind::Other, StatusCode::UNAUTHORIZED, answer, 0, 0)
        } else {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            route(&mut w, &method, uri.path(), query.as_deref(), &body)
        };
        let cost = kind.cost(listed, counted);
        let counts = w.counts.entry(who.unwrap_or("unknown")).or_default();
        *counts.requests.entry(kind).or_default() += 1;
        counts.listed += listed as u64;
        counts.busy += cost;
        let done = w.workers.schedule(arrived, cost);
        (status, answer, done)
    };
    let body = answer.to_string();
    tokio::time::sleep_until(done).await;
    (status, [("content-type", "application/json")], body).into_response()
}
