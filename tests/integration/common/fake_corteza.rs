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
//! OR deleted_at >= 'T')`, one of those comparisons alone (a record whose
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

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::fake_peer::fixture;

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
}

#[derive(Clone)]
pub struct FakeCorteza {
    pub addr: SocketAddr,
    world: Arc<Mutex<World>>,
    _server: Arc<tokio::task::JoinHandle<()>>,
}

/// The next second of the fake's clock (the same while it is held).
fn now(w: &mut World) -> String {
    if w.wall_clock {
        let now = chrono::Utc::now();
        w.clock = Some(now);
        return now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    let step = match (w.clock, w.clock_held) {
        (Some(_), true) => chrono::Duration::zero(),
        _ => chrono::Duration::seconds(1),
    };
    let next = w
        .clock
        .unwrap_or_else(|| chrono::Utc::now() - chrono::Duration::hours(1))
        + step;
    w.clock = Some(next);
    next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn error(message: &str, kind: &str) -> Response {
    Json(json!({"error": {"message": message, "meta": {"type": kind}}})).into_response()
}

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
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(world.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeCorteza {
            addr,
            world,
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

fn next(w: &mut World) -> String {
    w.next_id += 1;
    w.next_id.to_string()
}

fn make_module(w: &mut World, namespace: &str, body: &Value, id: Option<String>) -> Value {
    let id = id.unwrap_or_else(|| next(w));
    let recorded = &fixture("014-A-compose-create-module.json")["response"]["body"]["response"];
    let field_shape = recorded["fields"][0].clone();
    let mut module = recorded.clone();
    module["moduleID"] = json!(id);
    module["namespaceID"] = json!(namespace);
    module["name"] = body["name"].clone();
    module["handle"] = body["handle"].clone();
    module["createdAt"] = json!(now(w));
    let mut fields = Vec::new();
    for f in body["fields"].as_array().cloned().unwrap_or_default() {
        let mut field = field_shape.clone();
        field["fieldID"] = match f.get("fieldID") {
            Some(id) if !id.is_null() => id.clone(),
            _ => json!(next(w)),
        };
        field["namespaceID"] = json!(namespace);
        field["moduleID"] = json!(id);
        for key in ["name", "kind", "label"] {
            field[key] = f[key].clone();
        }
        field["isMulti"] = json!(f["isMulti"].as_bool().unwrap_or(false));
        field["isRequired"] = json!(f["isRequired"].as_bool().unwrap_or(false));
        fields.push(field);
    }
    module["fields"] = Value::Array(fields);
    module
}

fn make_record(w: &mut World, module: &str, body: &Value) -> Value {
    let id = next(w);
    let namespace = w
        .modules
        .iter()
        .find(|m| m["moduleID"] == module)
        .map(|m| m["namespaceID"].clone())
        .unwrap_or(Value::Null);
    let mut record =
        fixture("015-A-compose-create-record-1.json")["response"]["body"]["response"].clone();
    record["recordID"] = json!(id);
    record["moduleID"] = json!(module);
    record["namespaceID"] = namespace;
    record["values"] = body["values"].clone();
    record["createdAt"] = json!(now(w));
    record["revision"] = json!(1);
    if let Some(meta) = body.get("meta").filter(|m| m.is_object()) {
        record["meta"] = meta.clone();
    }
    record
}

fn apply_update(record: &mut Value, body: &Value, stamp: String) {
    record["values"] = body["values"].clone();
    if let Some(meta) = body.get("meta").filter(|m| m.is_object()) {
        record["meta"] = meta.clone();
    }
    record["revision"] = json!(record["revision"].as_u64().unwrap_or(1) + 1);
    record["updatedAt"] = json!(stamp);
    record["updatedBy"] = record["ownedBy"].clone();
}

fn params(query: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A page of `items` after `pageCursor`, in 123's envelope, and how many
/// items it holds.
fn page(items: Vec<Value>, params: &[(String, String)], mut filter: Value) -> (Response, usize) {
    let limit: usize = param(params, "limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let start: usize = match param(params, "pageCursor") {
        None => 0,
        Some(c) => match c.strip_prefix("fake:").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return (error("invalid page cursor", "invalidPageCursor"), 0),
        },
    };
    let total = items.len();
    let end = start.saturating_add(limit).min(total);
    let set: Vec<Value> = items.get(start..end).unwrap_or(&[]).to_vec();
    if end < total {
        filter["nextPage"] = json!(format!("fake:{end}"));
    }
    if limit != usize::MAX {
        filter["limit"] = json!(limit);
    }
    // Corteza leaves a total of 0 out (`omitempty`).
    if param(params, "incTotal") == Some("true") && total > 0 {
        filter["total"] = json!(total);
    }
    let count = set.len();
    (
        Json(json!({"response": {"filter": filter, "set": set}})).into_response(),
        count,
    )
}

/// The ids of a query `(id = A OR id = B …)`.
fn ids_of(query: &str) -> Option<Vec<String>> {
    let inner = query.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(" OR ")
        .map(|part| {
            let id = part.strip_prefix("id = ")?;
            id.parse::<u64>().ok().map(|_| id.to_owned())
        })
        .collect()
}

/// A list going on after an id inside a second, `(column >= 'T+1' OR
/// (column >= 'T' AND id > X))`: the attribute, T+1, T and X.
fn continued(query: &str) -> Option<(&'static str, String, String, u64)> {
    let inner = query.strip_prefix('(')?.strip_suffix(')')?;
    let (later, within) = inner.split_once(" OR (")?;
    let within = within.strip_suffix(')')?;
    let (same, id) = within.split_once(" AND id > ")?;
    let id: u64 = id.parse().ok()?;
    let (attribute, next) = at_or_after(later)?;
    let (again, t) = at_or_after(same)?;
    (attribute == again).then_some((attribute, next, t, id))
}

/// `column >= 'T'`: the record attribute of the column, and T.
fn at_or_after(part: &str) -> Option<(&'static str, String)> {
    [
        ("created_at", "createdAt"),
        ("updated_at", "updatedAt"),
        ("deleted_at", "deletedAt"),
    ]
    .into_iter()
    .find_map(|(column, attribute)| {
        let t = part.strip_prefix(column)?.strip_prefix(" >= '")?;
        Some((attribute, t.strip_suffix('\'')?.to_owned()))
    })
}

/// A record query fedsync sends: the record attributes compared and the
/// time (a record is selected when any of them is at or after it), or
/// `None` for a query of another form.
fn since(query: &str) -> Option<(Vec<&'static str>, String)> {
    if let Some(one) = at_or_after(query) {
        return Some((vec![one.0], one.1));
    }
    if query.starts_with("(id = ") {
        return None;
    }
    let inner = query.strip_prefix('(')?.strip_suffix(')')?;
    let parts: Vec<&str> = inner.split(" OR ").collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let t = a.strip_prefix("updated_at >= '")?.strip_suffix('\'')?;
    (*b == format!("created_at >= '{t}'") && *c == format!("deleted_at >= '{t}'"))
        .then(|| (vec!["updatedAt", "createdAt", "deletedAt"], t.to_owned()))
}

async fn handle(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut w = world.lock().unwrap();
    w.seen.push(Seen {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone().unwrap_or_default(),
    });
    if let Some((_, status)) = w.outages.iter().find(|(p, _)| path.starts_with(p.as_str())) {
        return StatusCode::from_u16(*status).unwrap().into_response();
    }
    if method == Method::POST && path.ends_with("/record/") {
        match w.creates_left {
            Some(0) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
            Some(n) => w.creates_left = Some(n - 1),
            None => {}
        }
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !w.tokens.contains(token) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "unauthorized"}})),
        )
            .into_response();
    }
    if w.forbidden.iter().any(|p| path.starts_with(p.as_str())) {
        return error(
            "not allowed to read records of this module",
            "notAllowedToRead",
        );
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let params = params(&query);
    let parts: Vec<&str> = path
        .trim_start_matches("/api/compose/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["namespace"]) => {
            let slug = param(&params, "slug");
            let set: Vec<Value> = w
                .namespaces
                .iter()
                .filter(|n| slug.is_none_or(|s| n["slug"] == s))
                .cloned()
                .collect();
            page(
                set,
                &params,
                json!({"slug": slug.unwrap_or(""), "query": ""}),
            )
            .0
        }
        ("GET", ["namespace", ns]) => match w.namespaces.iter().find(|n| n["namespaceID"] == *ns) {
            Some(n) => Json(json!({"response": n})).into_response(),
            None => error("namespace does not exist", "notFound"),
        },
        (_, ["namespace", ns, ..]) if !w.namespaces.iter().any(|n| n["namespaceID"] == *ns) => {
            error("namespace does not exist", "notFound")
        }
        ("GET", ["namespace", ns, "module"]) => {
            let handle = param(&params, "handle");
            let set: Vec<Value> = w
                .modules
                .iter()
                .filter(|m| m["namespaceID"] == *ns && m["deletedAt"].is_null())
                .filter(|m| handle.is_none_or(|h| m["handle"] == h))
                .cloned()
                .collect();
            page(
                set,
                &params,
                json!({"namespaceID": ns, "handle": handle.unwrap_or(""), "query": "", "sort": ""}),
            )
            .0
        }
        ("POST", ["namespace", ns, "module"]) => {
            if w.modules
                .iter()
                .any(|m| m["namespaceID"] == *ns && m["handle"] == body["handle"])
            {
                return error("handle not unique", "handleNotUnique");
            }
            let module = make_module(&mut w, ns, &body, None);
            w.modules.push(module.clone());
            Json(json!({"response": module})).into_response()
        }
        (_, ["namespace", _, "module", m, ..])
            if !w
                .modules
                .iter()
                .any(|x| x["moduleID"] == *m && x["deletedAt"].is_null()) =>
        {
            error("module does not exist", "notFound")
        }
        ("GET", ["namespace", _, "module", m]) => {
            let module = w.modules.iter().find(|x| x["moduleID"] == *m).unwrap();
            Json(json!({"response": module})).into_response()
        }
        ("POST", ["namespace", ns, "module", m]) => {
            let mut updated = make_module(&mut w, ns, &body, Some(m.to_string()));
            let index = w.modules.iter().position(|x| x["moduleID"] == *m).unwrap();
            updated["createdAt"] = w.modules[index]["createdAt"].clone();
            updated["updatedAt"] = json!(now(&mut w));
            w.modules[index] = updated.clone();
            Json(json!({"response": updated})).into_response()
        }
        ("DELETE", ["namespace", _, "module", m]) => {
            let index = w.modules.iter().position(|x| x["moduleID"] == *m).unwrap();
            let stamp = now(&mut w);
            w.modules[index]["deletedAt"] = json!(stamp);
            Json(fixture("108-A-compose-delete-record-carol.json")["response"]["body"].clone())
                .into_response()
        }
        ("GET", ["namespace", ns, "module", m, "record"]) => {
            let deleted = param(&params, "deleted").unwrap_or("0");
            let query = param(&params, "query").unwrap_or("");
            let since = since(query);
            let ids = ids_of(query).filter(|_| !w.no_id_queries);
            let continued = continued(query).filter(|_| !w.no_id_continuation);
            if !query.is_empty() && since.is_none() && ids.is_none() && continued.is_none() {
                return error("invalid query", "invalidQuery");
            }
            let sort = param(&params, "sort").unwrap_or("");
            if !["", "createdAt", "updatedAt", "deletedAt"].contains(&sort) {
                return error(&format!("unknown attribute \"{sort}\""), "invalidSort");
            }
            let metas: Vec<(&str, &str)> = params
                .iter()
                .filter(|(k, _)| k == "meta")
                .filter_map(|(_, v)| v.split_once('='))
                .collect();
            let set: Vec<Value> = w
                .records
                .values()
                .filter(|r| r["moduleID"] == *m)
                .filter(|r| match deleted {
                    "1" => true,
                    "2" => !r["deletedAt"].is_null(),
                    _ => r["deletedAt"].is_null(),
                })
                .filter(|r| metas.iter().all(|(k, v)| r["meta"][*k] == *v))
                .filter(|r| {
                    ids.as_ref()
                        .is_none_or(|ids| ids.iter().any(|id| r["recordID"] == *id))
                })
                .filter(|r| {
                    continued.as_ref().is_none_or(|(k, next, t, after)| {
                        r[*k].as_str().is_some_and(|at| {
                            at >= next.as_str()
                                || (at >= t.as_str()
                                    && r["recordID"]
                                        .as_str()
                                        .and_then(|id| id.parse::<u64>().ok())
                                        .is_some_and(|id| id > *after))
                        })
                    })
                })
                .filter(|r| {
                    since.as_ref().is_none_or(|(columns, t)| {
                        columns
                            .iter()
                            .any(|k| r[*k].as_str().is_some_and(|at| at >= t.as_str()))
                    })
                })
                .cloned()
                .collect();
            // The records map is by ID; a stable sort keeps ID as the tie-break.
            let mut set = set;
            if !sort.is_empty() {
                set.sort_by(|a, b| a[sort].as_str().cmp(&b[sort].as_str()));
            }
            let answer = page(
                set,
                &params,
                json!({"moduleID": m, "namespaceID": ns, "query": query, "deleted": deleted.parse::<u64>().unwrap_or(0), "sort": if sort.is_empty() { "ID".to_owned() } else { format!("{sort}, ID") }}),
            );
            w.listed += answer.1;
            answer.0
        }
        ("POST", ["namespace", _, "module", m, "record"]) => {
            let record = make_record(&mut w, m, &body);
            w.records.insert(
                record["recordID"].as_str().unwrap().parse().unwrap(),
                record.clone(),
            );
            Json(json!({"response": record})).into_response()
        }
        (verb, ["namespace", _, "module", m, "record", r]) => {
            let Ok(id) = r.parse::<u64>() else {
                return error("invalid ID", "invalidID");
            };
            let stamp = now(&mut w);
            let record = w
                .records
                .get_mut(&id)
                .filter(|x| x["moduleID"] == *m && (verb == "GET" || x["deletedAt"].is_null()));
            let Some(record) = record else {
                return error("record does not exist", "notFound");
            };
            match verb {
                "GET" => Json(json!({"response": record})).into_response(),
                "POST" => {
                    apply_update(record, &body, stamp);
                    Json(json!({"response": record})).into_response()
                }
                "DELETE" => {
                    record["deletedAt"] = json!(stamp);
                    record["deletedBy"] = record["ownedBy"].clone();
                    Json(
                        fixture("108-A-compose-delete-record-carol.json")["response"]["body"]
                            .clone(),
                    )
                    .into_response()
                }
                _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            }
        }
        _ => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
    }
}
