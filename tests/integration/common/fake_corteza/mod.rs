//! A fake of Corteza's compose REST API (namespaces, modules, records), a
//! real HTTP server on loopback, for fedsync in sidecar mode.
//!
//! Every object it answers with is built on a payload recorded from a real
//! Corteza server (`tests/fixtures/corteza-wire/`, recorded with the
//! harness of `../shared/corteza-wire/README.md`: two stock Corteza
//! 2024.9 servers on loopback, an operator driving them with curl-like
//! requests under an admin JWT from `corteza-server auth jwt`, every
//! exchange written out as JSON): a namespace is 013's answer, a module
//! 014's, a record 015's (with the meta of 123's list), a list 123's
//! `{filter, set}` envelope, a deletion 108's; lists sorted by a time and
//! lists by ids answer as S01-S05 (recorded from a stock Corteza by
//! fedsync's own sidecar run, see `tests/fixtures/corteza-wire/README.md`):
//! `filter.sort` names the time, then `ID`; a count (`incTotal`) as S06
//! and S07 (`filter.total`, left out at 0). Only the values, ids and
//! times are this fake's own. Errors come as Corteza sends them: HTTP 200
//! with `{"error": {"message", "meta": {"type"}}}` (recorded 064, 071); a
//! token it does not know is HTTP 401.
//!
//! Record lists honour what fedsync sends and Corteza defines: `deleted`
//! (0 exclude, 1 include, 2 only), `meta` (`key=value`, all must match),
//! `limit` with `filter.nextPage`/`pageCursor`, `incTotal`, `sort` by one of
//! `createdAt`, `updatedAt`, `deletedAt` (then by ID, as Corteza's DAL adds
//! the primary key; by ID alone when absent), and the `query` forms fedsync
//! uses: Corteza federation's own `(updated_at >= 'T' OR created_at >= 'T'
//! OR deleted_at >= 'T')`, the same without `created_at`, one of those
//! comparisons alone (a record whose
//! column is unset is not selected, as SQL's NULL compares), and records by
//! id, `(id = A OR id = B …)`, and a list going on after an id inside a
//! second, `(created_at >= 'T+1' OR (created_at >= 'T' AND id > X))`. Any
//! other query or sort is refused, so a test fails if fedsync sends
//! another; `refuse_id_queries` and `refuse_id_continuation` refuse the
//! last two forms too, as a Corteza that does not take them would.
//!
//! The fake's clock starts an hour back and moves one second per change, so
//! every change has its own second, long over (fedsync serves a change
//! second only once it is over); `hold_clock` keeps it in one second, as a
//! bulk import fills one.

mod faults;
mod handle;
mod objects;
mod query;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::common::fake_peer::fixture;
use objects::*;

#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
}

#[derive(Default)]
struct World {
    clock: Option<chrono::DateTime<chrono::Utc>>,
    next_id: u64,
    namespaces: Vec<Value>,
    modules: Vec<Value>,
    /// record id -> record
    records: BTreeMap<u64, Value>,
    tokens: HashSet<String>,
    seen: Vec<Seen>,
    /// Paths (prefixes) answered with this status instead.
    outages: Vec<(String, u16)>,
    /// Paths (prefixes) refused with Corteza's notAllowed error.
    forbidden: Vec<String>,
    /// Records sent in record lists, all of them.
    listed: usize,
    /// Refuse `(id = … OR …)` queries.
    no_id_queries: bool,
    /// Refuse lists going on after an id inside a second.
    no_id_continuation: bool,
    /// The clock stays in its second (a bulk import).
    clock_held: bool,
    /// Changes are stamped with the real time, as a Corteza beside fedsync
    /// stamps them.
    wall_clock: bool,
    /// Record creates taken before they answer 503.
    creates_left: Option<usize>,
    faults: faults::Faults,
}

#[derive(Clone)]
pub struct FakeCorteza {
    pub addr: SocketAddr,
    world: Arc<Mutex<World>>,
    gate: Arc<tokio::sync::Semaphore>,
    created: Arc<tokio::sync::watch::Sender<usize>>,
    _server: Arc<tokio::task::JoinHandle<()>>,
}

/// The next second of the fake's clock (the same while it is held).
impl FakeCorteza {
    /// On a free loopback port.
    pub async fn start(token: &str) -> FakeCorteza {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        FakeCorteza::serve(listener, token)
    }

    /// On `addr` (a port fedsync was told of before Corteza was up).
    pub async fn start_on(addr: SocketAddr, token: &str) -> FakeCorteza {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        FakeCorteza::serve(listener, token)
    }

    fn serve(listener: tokio::net::TcpListener, token: &str) -> FakeCorteza {
        let addr = listener.local_addr().unwrap();
        let world = Arc::new(Mutex::new(World {
            next_id: 523_700_000_000_000_001,
            tokens: [token.to_owned()].into(),
            ..Default::default()
        }));
        let shared = faults::Shared {
            world: world.clone(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            created: Arc::new(tokio::sync::watch::channel(0).0),
        };
        let app = axum::Router::new()
            .fallback(faults::serve_request)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeCorteza {
            addr,
            world,
            gate: shared.gate,
            created: shared.created,
            _server: Arc::new(server),
        }
    }

    /// fedsync's `local.corteza_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn accept_only(&self, token: &str) {
        self.world.lock().unwrap().tokens = [token.to_owned()].into();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.world.lock().unwrap().seen.clone()
    }

    /// Requests under `prefix` (e.g. `/api/compose/`) answer `status`.
    pub fn outage(&self, prefix: &str, status: u16) {
        self.world
            .lock()
            .unwrap()
            .outages
            .push((prefix.to_owned(), status));
    }

    pub fn end_outages(&self) {
        self.world.lock().unwrap().outages.clear();
    }

    /// Requests under `prefix` are refused as Corteza refuses a user
    /// without the permission.
    pub fn forbid(&self, prefix: &str) {
        self.world.lock().unwrap().forbidden.push(prefix.to_owned());
    }

    pub fn allow_all(&self) {
        self.world.lock().unwrap().forbidden.clear();
    }

    /// A namespace, as recorded 013 made it; returns its id.
    pub fn add_namespace(&self, name: &str, slug: &str) -> String {
        let mut w = self.world.lock().unwrap();
        let id = next(&mut w);
        let mut ns =
            fixture("013-A-compose-create-namespace.json")["response"]["body"]["response"].clone();
        ns["namespaceID"] = json!(id);
        ns["name"] = json!(name);
        ns["slug"] = json!(slug);
        ns["createdAt"] = json!(now(&mut w));
        w.namespaces.push(ns);
        id
    }

    /// A module from a create request body (recorded 014, 038); returns its id.
    pub fn add_module(&self, namespace: &str, body: &Value) -> String {
        let mut w = self.world.lock().unwrap();
        let module = make_module(&mut w, namespace, body, None);
        let id = module["moduleID"].as_str().unwrap().to_owned();
        w.modules.push(module);
        id
    }

    /// A record from a create request body (recorded 015-017, 109), as an
    /// operator of this Corteza makes it; returns its id.
    pub fn add_record(&self, module: &str, body: &Value) -> String {
        let mut w = self.world.lock().unwrap();
        let record = make_record(&mut w, module, body);
        let id = record["recordID"].as_str().unwrap().to_owned();
        w.records.insert(id.parse().unwrap(), record);
        id
    }

    /// An operator's update (recorded 107's body).
    pub fn update_record(&self, id: &str, body: &Value) {
        let mut w = self.world.lock().unwrap();
        let stamp = now(&mut w);
        let record = w.records.get_mut(&id.parse().unwrap()).expect("a record");
        apply_update(record, body, stamp);
    }

    /// An operator's soft delete (recorded 108).
    pub fn delete_record(&self, id: &str) {
        let mut w = self.world.lock().unwrap();
        let stamp = now(&mut w);
        let record = w.records.get_mut(&id.parse().unwrap()).expect("a record");
        record["deletedAt"] = json!(stamp);
        record["deletedBy"] = record["ownedBy"].clone();
    }

    /// Refuse record queries by id from now on.
    pub fn refuse_id_queries(&self) {
        self.world.lock().unwrap().no_id_queries = true;
    }

    /// Refuse `(column >= 'T+1' OR (column >= 'T' AND id > X))`, as a
    /// Corteza that does not take it would.
    pub fn refuse_id_continuation(&self) {
        self.world.lock().unwrap().no_id_continuation = true;
    }

    /// Takes `n` more record creates, then answers 503 to them (Corteza
    /// failing in the middle of a batch); `None` takes them all again.
    pub fn fail_creates_after(&self, n: Option<usize>) {
        self.world.lock().unwrap().creates_left = n;
    }

    /// From now on, changes are stamped with the real time (a Corteza
    /// beside fedsync, whose clock is the same).
    pub fn wall_clock(&self) {
        self.world.lock().unwrap().wall_clock = true;
    }

    /// While held, every change happens in the same second.
    pub fn hold_clock(&self, held: bool) {
        self.world.lock().unwrap().clock_held = held;
    }

    /// Records sent in record lists so far.
    pub fn listed(&self) -> usize {
        self.world.lock().unwrap().listed
    }

    pub fn modules(&self) -> Vec<Value> {
        self.world.lock().unwrap().modules.clone()
    }

    /// Records of a module, deleted ones too, by id.
    pub fn records(&self, module: &str) -> Vec<Value> {
        self.world
            .lock()
            .unwrap()
            .records
            .values()
            .filter(|r| r["moduleID"] == module)
            .cloned()
            .collect()
    }
}
