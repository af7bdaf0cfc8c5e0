//! The Corteza data plane (sidecar mode): modules and records live in a
//! Corteza instance beside fedsync and are read and written through its
//! compose REST API (`{url}/compose/namespace/{ns}/module/...`). Identity
//! of received records (links), cursors, run errors and progress stay in
//! fedsync's store; the records themselves are Corteza's, with Corteza's
//! ids.
//!
//! Corteza answers most failures with HTTP 200 and `{"error": {"message",
//! "meta": {"type"}}}`; they are classified here: a refusal (not allowed,
//! not found, invalid values) is an admin's to fix, while an unreachable
//! Corteza, a 5xx or a 429 is retried later.
//!
//! Changes are served to peers by (change time, id), with Corteza's
//! precision of a second: a page merges Corteza's lists of the records
//! created, updated and deleted since the second of the reader's cursor,
//! each sorted by its time, reading only as far as the page needs
//! (`changes`). A second is served only once it is over (two seconds of
//! margin), so a record changed later in the same second is never left
//! behind a cursor. The total a first page may carry is one pass over the
//! query Corteza's own federation uses (`updated_at >= T OR created_at >= T
//! OR deleted_at >= T`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

mod changes;
mod live;

#[cfg(test)]
use changes::ChangeList;
use changes::{ChangeMerge, Listed};

use crate::domain::{
    self, FieldKind, Id, LocalField, LocalModule, NodeId, Record, RecordValues, Timestamp,
};
use crate::store::{ChangeQuery, RecordBatch, Store};
use crate::sync::ports::{LocalData, LocalError, LocalRecords, NewModule};

/// The meta key Corteza's own federation gives a received record: the
/// origin's record id.
pub const META_EXTRECORD: &str = "federation_extrecord";
/// Where a received record came from (Corteza: the origin node's base URL).
pub const META_FEDERATION: &str = "federation";
/// fedsync's node id of the peer a record came from.
pub const META_NODE: &str = "fedsync_node";

/// Records asked for by one list query (`(id = … OR id = …)`, about 25
/// bytes of URL each).
const IDS_PER_LIST: usize = 100;
/// A change second is served once this much later (see the module doc).
const SETTLE_SECONDS: i64 = 2;

/// How long a count of a peer's records in Corteza is relied on (see
/// `CortezaData::all_linked`).
const RECOUNT_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Changes before this (microseconds) are served: their second is over.
fn settled() -> i64 {
    (domain::now().timestamp() - SETTLE_SECONDS + 1) * 1_000_000
}

/// Where the Corteza API token comes from.
#[derive(Clone)]
pub enum CortezaToken {
    Inline(Zeroizing<String>),
    /// Read on every request, so a rotated file (a Kubernetes Secret) is
    /// used at once; the last good token is kept while the file is absent.
    File(PathBuf),
}

/// How to reach Corteza and how hard to use it.
#[derive(Clone)]
pub struct CortezaSettings {
    /// The API base, e.g. `http://127.0.0.1:80/api`.
    pub url: String,
    pub token: CortezaToken,
    /// The namespace's slug or id.
    pub namespace: String,
    pub requests_per_second: u32,
    pub max_concurrent: u32,
    pub page_size: u32,
    pub timeout: Duration,
}

/// A failed call to Corteza.
#[derive(Debug)]
enum CallError {
    /// Corteza could not be asked or answered 5xx/429: try again later.
    Unavailable(String),
    /// Corteza answered with an error of this type (`notFound`...).
    Refused { kind: String, message: String },
}

impl CallError {
    fn not_found(&self) -> bool {
        matches!(self, CallError::Refused { kind, .. } if kind == "notFound" || kind == "http404")
    }
}

impl From<CallError> for LocalError {
    fn from(error: CallError) -> LocalError {
        match error {
            CallError::Unavailable(m) => LocalError::Unavailable(m),
            CallError::Refused { message, kind } if kind.starts_with("notAllowed") => {
                LocalError::Invalid(format!(
                    "Corteza refused: {message} (give the token's user the permission)"
                ))
            }
            CallError::Refused { message, .. } => {
                LocalError::Invalid(format!("Corteza refused: {message}"))
            }
        }
    }
}

/// Spaces requests at least `interval` apart.
struct Pace {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}

pub struct CortezaData {
    http: reqwest::Client,
    base: String,
    settings: CortezaSettings,
    store: Arc<dyn Store>,
    gate: tokio::sync::Semaphore,
    pace: Pace,
    last_token: std::sync::Mutex<Option<Zeroizing<String>>>,
    namespace: tokio::sync::OnceCell<Namespace>,
    /// Record id -> module id, learnt from what was read and written, for
    /// reads that do not say the module.
    homes: std::sync::Mutex<HashMap<Id, Id>>,
    /// Corteza refused a list query by ids once: records are read one by
    /// one from then on.
    no_ids_query: std::sync::atomic::AtomicBool,
    /// Corteza refused a list going on after an id inside a second once:
    /// seconds are read whole from then on.
    no_id_continuation: std::sync::atomic::AtomicBool,
    /// (peer, module) -> the run in which, and when, Corteza was counted
    /// to hold no record of that peer without its link (see `all_linked`).
    all_linked_in: std::sync::Mutex<HashMap<(NodeId, Id), (Id, std::time::Instant)>>,
    /// Module -> (the second it was last looked at for changes, the mark
    /// of the newest change seen): see `live.rs`.
    looked: std::sync::Mutex<HashMap<Id, (i64, i64)>>,
}

#[derive(Debug, Clone)]
struct Namespace {
    id: Id,
    slug: String,
}

impl CortezaData {
    pub fn new(settings: CortezaSettings, store: Arc<dyn Store>) -> Result<CortezaData, String> {
        crate::crypto::tls::install_crypto_provider();
        let tls = crate::crypto::tls::client_config(None)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the Corteza client: {e}"))?;
        let per = Duration::from_secs(1) / settings.requests_per_second.max(1);
        Ok(CortezaData {
            http,
            base: settings.url.trim_end_matches('/').to_owned(),
            gate: tokio::sync::Semaphore::new(settings.max_concurrent.max(1) as usize),
            pace: Pace {
                interval: per,
                next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            },
            settings,
            store,
            last_token: std::sync::Mutex::new(None),
            namespace: tokio::sync::OnceCell::new(),
            homes: std::sync::Mutex::new(HashMap::new()),
            no_ids_query: std::sync::atomic::AtomicBool::new(false),
            no_id_continuation: std::sync::atomic::AtomicBool::new(false),
            all_linked_in: std::sync::Mutex::new(HashMap::new()),
            looked: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Whether Corteza answers with the namespace now: the readiness check
    /// (not paced behind sync traffic).
    pub async fn check(&self) -> Result<(), String> {
        let text = |e: LocalError| match e {
            LocalError::Unavailable(m) | LocalError::Invalid(m) => m,
            other => other.to_string(),
        };
        let ns = self.ns().await.map_err(text)?;
        self.send(
            Method::GET,
            &format!("/compose/namespace/{}", ns.id),
            &[],
            None,
        )
        .await
        .map(|_| ())
        .map_err(|e| text(e.into()))
    }

    fn token(&self) -> Result<Zeroizing<String>, CallError> {
        match &self.settings.token {
            CortezaToken::Inline(token) => Ok(token.clone()),
            CortezaToken::File(path) => {
                let mut last = self.last_token.lock().expect("token lock");
                match std::fs::read_to_string(path) {
                    Ok(text) if !text.trim().is_empty() => {
                        let token = Zeroizing::new(text.trim().to_owned());
                        *last = Some(token.clone());
                        Ok(token)
                    }
                    read => last.clone().ok_or_else(|| {
                        CallError::Unavailable(match read {
                            Ok(_) => format!("the Corteza token file {} is empty", path.display()),
                            Err(e) => format!(
                                "cannot read the Corteza token file {}: {e}",
                                path.display()
                            ),
                        })
                    }),
                }
            }
        }
    }

    /// One request; returns Corteza's `response`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let _slot = self
            .gate
            .acquire()
            .await
            .map_err(|_| CallError::Unavailable("shutting down".into()))?;
        self.pace.wait().await;
        self.send(method, path, query, body).await
    }

    /// One request, at once.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut url = url::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| CallError::Unavailable(format!("bad Corteza URL {}: {e}", self.base)))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let token = self.token()?;
        let mut request = self
            .http
            .request(method.clone(), url)
            .header("Accept", "application/json")
            .bearer_auth(token.as_str());
        if let Some(body) = body {
            request = request.json(body);
        }
        let where_ = || format!("Corteza at {}", self.base);
        let response = request.send().await.map_err(|e| {
            CallError::Unavailable(if e.is_timeout() {
                format!(
                    "{} did not answer within {}s",
                    where_(),
                    self.settings.timeout.as_secs()
                )
            } else {
                format!("cannot reach {}: {}", where_(), root_cause(&e))
            })
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CallError::Unavailable(format!("{}: {}", where_(), root_cause(&e))))?;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| v.pointer("/error/message"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(CallError::Unavailable(format!(
                "{} answered HTTP {}{}",
                where_(),
                status.as_u16(),
                message.map(|m| format!(": {m}")).unwrap_or_default()
            )));
        }
        if status.as_u16() == 401 {
            return Err(CallError::Refused {
                kind: "unauthorized".into(),
                message: format!(
                    "{} does not accept the token (HTTP 401{}); check local.corteza_token_file",
                    where_(),
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                ),
            });
        }
        if !status.is_success() {
            return Err(CallError::Refused {
                kind: format!("http{}", status.as_u16()),
                message: message.unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
            });
        }
        let Some(value) = parsed else {
            return Err(CallError::Unavailable(format!(
                "{} answered {} {path} with something that is not JSON",
                where_(),
                method
            )));
        };
        if let Some(error) = value.get("error") {
            return Err(CallError::Refused {
                kind: error
                    .pointer("/meta/type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                message: message.unwrap_or_else(|| error.to_string()),
            });
        }
        Ok(value.get("response").cloned().unwrap_or(value))
    }

    /// A read, tried up to three times when Corteza may come back.
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CallError> {
        let mut wait = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            match self.call(Method::GET, path, query, None).await {
                Err(CallError::Unavailable(_)) if tries < 2 => {
                    tries += 1;
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
                other => return other,
            }
        }
    }

    async fn ns(&self) -> Result<&Namespace, LocalError> {
        self.namespace
            .get_or_try_init(|| async {
                let key = self.settings.namespace.trim();
                let found = if key.parse::<Id>().is_ok() {
                    match self.get(&format!("/compose/namespace/{key}"), &[]).await {
                        Ok(ns) => Some(ns),
                        Err(e) if e.not_found() => None,
                        Err(e) => return Err(LocalError::from(e)),
                    }
                } else {
                    let list = self
                        .get("/compose/namespace/", &[("slug", key.to_owned())])
                        .await?;
                    set(&list)
                        .iter()
                        .find(|n| n.get("slug").and_then(Value::as_str) == Some(key))
                        .cloned()
                };
                let ns = found.ok_or_else(|| {
                    LocalError::Invalid(format!(
                        "Corteza has no namespace `{key}` (local.corteza_namespace), or the token's user cannot read it"
                    ))
                })?;
                Ok(Namespace {
                    id: id_of(&ns, "namespaceID").ok_or_else(|| {
                        LocalError::Invalid("Corteza's namespace has no namespaceID".into())
                    })?,
                    slug: ns
                        .get("slug")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                })
            })
            .await
    }

    async fn module_path(&self, module_id: Id) -> Result<String, LocalError> {
        Ok(format!(
            "/compose/namespace/{}/module/{module_id}",
            self.ns().await?.id
        ))
    }

    async fn read_module(&self, id: Id) -> Result<Option<Value>, LocalError> {
        match self.get(&self.module_path(id).await?, &[]).await {
            Ok(module) => Ok(Some(module)),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every page of a list, following Corteza's `filter.nextPage`.
    async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
        mut each: impl FnMut(&Value) -> Result<(), LocalError>,
    ) -> Result<(), LocalError> {
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", self.settings.page_size.to_string()));
            if let Some(c) = &cursor {
                q.push(("pageCursor", c.clone()));
            }
            let page = self.get(path, &q).await?;
            for item in set(&page) {
                each(item)?;
            }
            match page
                .pointer("/filter/nextPage")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
            {
                Some(next) if set(&page).is_empty() || !seen.insert(next.to_owned()) => {
                    return Err(LocalError::Unavailable(format!(
                        "Corteza's list {path} loops (the same page cursor twice)"
                    )));
                }
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(()),
            }
        }
    }

    fn remember(&self, records: &[Record]) {
        let mut homes = self.homes.lock().expect("homes lock");
        if homes.len() > 100_000 {
            homes.clear();
        }
        for r in records {
            homes.insert(r.id, r.module_id);
        }
    }

    async fn read_record(&self, module_id: Id, id: Id) -> Result<Option<Record>, LocalError> {
        let path = format!("{}/record/{id}", self.module_path(module_id).await?);
        match self.get(&path, &[]).await {
            Ok(value) => Ok(Some(record_from(&value)?)),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The records of `ids` in `module` (deleted ones included), read with
    /// one list query; `None` when Corteza refuses the query.
    async fn list_by_ids(&self, module: Id, ids: &[Id]) -> Result<Option<Vec<Record>>, LocalError> {
        let path = format!("{}/record/", self.module_path(module).await?);
        let any: Vec<String> = ids.iter().map(|id| format!("id = {id}")).collect();
        let query = [
            ("deleted", "1".to_owned()),
            ("query", format!("({})", any.join(" OR "))),
            ("limit", ids.len().to_string()),
        ];
        match self.get(&path, &query).await {
            Ok(page) => {
                let asked: std::collections::HashSet<Id> = ids.iter().copied().collect();
                let mut out = Vec::with_capacity(ids.len());
                for item in set(&page) {
                    let record = record_from(item)?;
                    // Checked here too: the query is Corteza's to honour.
                    if asked.contains(&record.id) && record.module_id == module {
                        out.push(record);
                    }
                }
                Ok(Some(out))
            }
            Err(CallError::Refused { message, .. }) => {
                tracing::info!(
                    %message,
                    "Corteza refused a record query by ids; records are read one by one"
                );
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records by id, looked for in their known module, else in `hint`,
    /// else in every module of the namespace. Those whose module is known
    /// are read a hundred at a time by one list query; the rest, and any
    /// such a query did not return, one by one. One missing from the
    /// module it belongs to (removed in Corteza) comes back deleted, so a
    /// sync does not make it again.
    async fn read_records(&self, hint: Option<Id>, ids: &[Id]) -> Result<Vec<Record>, LocalError> {
        use std::sync::atomic::Ordering;
        let home = |id: Id| {
            self.homes
                .lock()
                .expect("homes lock")
                .get(&id)
                .copied()
                .or(hint)
        };
        let mut listed: HashMap<Id, Record> = HashMap::new();
        if !self.no_ids_query.load(Ordering::Relaxed) {
            let mut by_module: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
            for &id in ids {
                if let Some(module) = home(id) {
                    by_module.entry(module).or_default().push(id);
                }
            }
            'modules: for (module, group) in by_module {
                for chunk in group.chunks(IDS_PER_LIST) {
                    match self.list_by_ids(module, chunk).await? {
                        Some(records) => listed.extend(records.into_iter().map(|r| (r.id, r))),
                        None => {
                            self.no_ids_query.store(true, Ordering::Relaxed);
                            break 'modules;
                        }
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        let mut modules: Option<Vec<Id>> = None;
        for &id in ids {
            if let Some(record) = listed.remove(&id) {
                out.push(record);
                continue;
            }
            let home = home(id);
            let candidates = match home {
                Some(module) => vec![module],
                None => {
                    if modules.is_none() {
                        modules = Some(self.list_modules().await?.iter().map(|m| m.id).collect());
                    }
                    modules.clone().unwrap_or_default()
                }
            };
            let mut found = None;
            for module in &candidates {
                if let Some(record) = self.read_record(*module, id).await? {
                    found = Some(record);
                    break;
                }
            }
            match (found, home) {
                (Some(record), _) => out.push(record),
                (None, Some(module)) => {
                    let now = domain::now();
                    out.push(Record {
                        id,
                        module_id: module,
                        values: BTreeMap::new(),
                        origin_node_id: None,
                        created_at: now,
                        updated_at: now,
                        deleted_at: Some(now),
                        changed_at: now.timestamp_micros(),
                        revision: 1,
                    });
                }
                (None, None) => {}
            }
        }
        self.remember(&out);
        Ok(out)
    }

    /// Whether every record of `node` in Corteza's `module` has its link:
    /// then no record of a new batch was made before by a batch whose links
    /// were lost, and none needs looking up (`made_before`).
    ///
    /// Counted once (Corteza's count reads every record it counts, about
    /// 13 s for 100,000, so not per run): links never go away but with their
    /// node, so it holds when Corteza counts as many records carrying the
    /// peer's meta (removed ones included) as there are links; our links
    /// are counted first, so a record another job makes meanwhile can only
    /// make the counts differ (and the batch look its records up). Then it
    /// holds in this process while every run of the job since the one that
    /// counted succeeds: only a run that fails can leave records without
    /// links (a batch written to Corteza whose store commit was lost), and
    /// only the job of an origin module makes its records. A new process
    /// counts again (its store may be a restored backup), and so does this
    /// one after a day, past any pruning of the runs it relies on.
    async fn all_linked(
        &self,
        node: NodeId,
        module: Id,
        run: Option<Id>,
    ) -> Result<bool, LocalError> {
        let known = self
            .all_linked_in
            .lock()
            .expect("all_linked_in lock")
            .get(&(node, module))
            .copied();
        if let (Some(run), Some((since, at))) = (run, known)
            && at.elapsed() < RECOUNT_AFTER
            && self.store.unsucceeded_runs_since(run, since).await? == 0
        {
            return Ok(true);
        }
        let links = self.store.count_links_into(node, module).await?;
        let path = format!("{}/record/", self.module_path(module).await?);
        let found = self
            .get(
                &path,
                &[
                    ("meta", format!("{META_NODE}={node}")),
                    ("deleted", "1".into()),
                    ("incTotal", "true".into()),
                    ("limit", "1".into()),
                ],
            )
            .await?;
        let total = peer_total(&found, node);
        let all = total == Some(links);
        {
            let mut known = self.all_linked_in.lock().expect("all_linked_in lock");
            match run {
                Some(run) if all => {
                    known.insert((node, module), (run, std::time::Instant::now()));
                }
                _ => {
                    known.remove(&(node, module));
                }
            }
        }
        if !all {
            tracing::info!(
                node = %node,
                module = %module,
                links,
                in_corteza = ?total,
                "records of the peer in Corteza and their links differ: new records are looked up by their meta before they are made"
            );
        }
        Ok(all)
    }

    /// The record fedsync made earlier for this origin record, if any (a
    /// batch whose links were not written: a crash, a store outage).
    async fn made_before(
        &self,
        module_id: Id,
        node: NodeId,
        origin: Id,
    ) -> Result<Option<Record>, LocalError> {
        let path = format!("{}/record/", self.module_path(module_id).await?);
        let found = self
            .get(
                &path,
                &[
                    ("meta", format!("{META_EXTRECORD}={origin}")),
                    ("meta", format!("{META_NODE}={node}")),
                    ("deleted", "1".into()),
                    ("limit", "10".into()),
                ],
            )
            .await?;
        made_for(&found, node, origin).map(record_from).transpose()
    }

    async fn write_record(
        &self,
        record: &Record,
        meta: Option<&Value>,
        existing: Option<Id>,
    ) -> Result<Record, LocalError> {
        let module = self.module_path(record.module_id).await?;
        let mut body = json!({ "values": values_json(&record.values) });
        if let Some(meta) = meta {
            body["meta"] = meta.clone();
        }
        let (path, action) = match existing {
            Some(id) => (format!("{module}/record/{id}"), "update"),
            None => (format!("{module}/record/"), "create"),
        };
        let value = self
            .call(Method::POST, &path, &[], Some(&body))
            .await
            .map_err(|e| match e {
                CallError::Refused { message, kind } => LocalError::Invalid(format!(
                    "Corteza refused to {action} a record in module {}: {message}{}",
                    record.module_id,
                    if kind.starts_with("notAllowed") {
                        " (give the token's user the permission)"
                    } else {
                        ""
                    }
                )),
                other => other.into(),
            })?;
        record_from(&value)
    }

    async fn delete_record(&self, record: &Record) -> Result<Record, LocalError> {
        let path = format!(
            "{}/record/{}",
            self.module_path(record.module_id).await?,
            record.id
        );
        match self.call(Method::DELETE, &path, &[], None).await {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let mut deleted = record.clone();
        let now = domain::now();
        deleted.deleted_at.get_or_insert(now);
        deleted.changed_at = now.timestamp_micros();
        Ok(deleted)
    }

    /// One page of a list and Corteza's cursor to the next, if any.
    async fn list_page(
        &self,
        path: &str,
        query: &[(&str, String)],
        cursor: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), LocalError> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("limit", self.settings.page_size.to_string()));
        if let Some(c) = cursor {
            q.push(("pageCursor", c.to_owned()));
        }
        let mut page = self.get(path, &q).await?;
        let next = page
            .pointer("/filter/nextPage")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let items = match page.get_mut("set").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        Ok((items, next))
    }

    /// The query selecting a module's records whose `column` is at or
    /// after `second` (Corteza compares to the second), or, with `after`,
    /// those of that second with a greater id and all of later seconds.
    fn since_query(
        column: &str,
        second: i64,
        after: Option<i64>,
    ) -> Option<(&'static str, String)> {
        let at = |s: i64| {
            DateTime::<Utc>::from_timestamp(s, 0)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        };
        let t = at(second)?;
        let query = match after {
            None => format!("{column} >= '{t}'"),
            Some(id) => {
                let next = at(second.checked_add(1)?)?;
                format!("({column} >= '{next}' OR ({column} >= '{t}' AND id > {id}))")
            }
        };
        Some(("query", query))
    }

    /// The page of changes a query selects, in change order: the three
    /// lists Corteza sorts by time, merged (see `changes`).
    async fn select_changes(&self, query: &ChangeQuery) -> Result<Vec<Record>, LocalError> {
        let path = format!("{}/record/", self.module_path(query.module_id).await?);
        use std::sync::atomic::Ordering;
        let mut merge = ChangeMerge::new(query, settled());
        // Every list starts at the cursor (its second, after its id); at
        // the epoch for a reader with none, so that `updated_at` and
        // `deleted_at` leave out the unset.
        let (second, mut after) = merge.start().unwrap_or((0, None));
        if self.no_id_continuation.load(Ordering::Relaxed) {
            after = None;
        }
        let mut cursors: [Option<String>; 3] = Default::default();
        let mut seen: [std::collections::HashSet<String>; 3] = Default::default();
        while let Some(list) = merge.next_list() {
            let cursor = cursors[list as usize].take();
            let q = |after: Option<i64>| {
                let mut q = vec![
                    ("deleted", "1".to_owned()),
                    ("sort", list.sort().to_owned()),
                ];
                q.extend(Self::since_query(list.column(), second, after));
                q
            };
            let answer = match self.list_page(&path, &q(after), cursor.as_deref()).await {
                // A Corteza that does not take the continuation by id is
                // read by whole seconds from then on (the merge is right
                // either way; it only reads more).
                Err(LocalError::Invalid(message)) if after.is_some() && cursor.is_none() => {
                    tracing::info!(
                        %message,
                        "Corteza refused a record list going on after an id; seconds are read whole"
                    );
                    self.no_id_continuation.store(true, Ordering::Relaxed);
                    after = None;
                    self.list_page(&path, &q(None), None).await
                }
                other => other,
            };
            let (items, next) = answer?;
            if let Some(next) = &next
                && (items.is_empty() || !seen[list as usize].insert(next.clone()))
            {
                return Err(LocalError::Unavailable(format!(
                    "Corteza's list {path} sorted by {} loops (the same page cursor twice)",
                    list.sort()
                )));
            }
            let page = items.iter().map(listed).collect::<Result<Vec<_>, _>>()?;
            merge.add(list, page, next.is_some())?;
            cursors[list as usize] = next;
        }
        let selected = merge.finish();
        self.remember(&selected);
        Ok(selected)
    }

    /// How many changes a query selects, all pages: one pass over
    /// Corteza's list of the records changed since the cursor's second
    /// (the query Corteza's own federation uses), counted as read.
    async fn count_selected(&self, query: &ChangeQuery) -> Result<u64, LocalError> {
        let path = format!("{}/record/", self.module_path(query.module_id).await?);
        let lower = query.lower_bound();
        let settled = settled();
        let mut q = vec![("deleted", "1".to_owned())];
        if let Some(t) = (lower.0 != i64::MIN)
            .then(|| lower.0.div_euclid(1_000_000))
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        {
            let t = t.to_rfc3339_opts(SecondsFormat::Secs, true);
            q.push((
                "query",
                format!("(updated_at >= '{t}' OR created_at >= '{t}' OR deleted_at >= '{t}')"),
            ));
        }
        let mut count = 0;
        self.list_all(&path, &q, |item| {
            let record = record_from(item)?;
            let received = item.pointer(&format!("/meta/{META_EXTRECORD}")).is_some();
            if (record.changed_at, record.id.as_i64()) > lower
                && record.changed_at < settled
                && !(query.exclude_received && received)
                && !(query.exclude_origin.is_some()
                    && record.origin_node_id == query.exclude_origin)
            {
                count += 1;
            }
            Ok(())
        })
        .await?;
        Ok(count)
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// The record of a list made for `node`'s record `origin`, checked here
/// too: the meta filter is Corteza's to honour.
fn made_for(page: &Value, node: NodeId, origin: Id) -> Option<&Value> {
    set(page).iter().find(|r| {
        meta_str(r, META_EXTRECORD) == Some(origin.to_string())
            && meta_str(r, META_NODE) == Some(node.to_string())
    })
}

/// How many records of `node` a count list (`meta=fedsync_node=N`,
/// `incTotal`, `limit=1`) says there are; `None` if it cannot tell.
/// Corteza leaves `total` out when it is 0; a filter it did not apply
/// shows as a record without the peer's meta.
fn peer_total(page: &Value, node: NodeId) -> Option<u64> {
    let items = set(page);
    if !items
        .iter()
        .all(|r| meta_str(r, META_NODE) == Some(node.to_string()))
    {
        return None;
    }
    match page.pointer("/filter/total").and_then(Value::as_u64) {
        Some(total) => Some(total),
        None if items.is_empty() => Some(0),
        None => None,
    }
}

fn set(value: &Value) -> &[Value] {
    value
        .get("set")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn id_of(value: &Value, key: &str) -> Option<Id> {
    match value.get(key)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().and_then(Id::new),
        _ => None,
    }
}

fn time_of(value: &Value, key: &str) -> Result<Option<Timestamp>, LocalError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| LocalError::Unavailable(format!("Corteza sent `{key}` = `{s}`: {e}"))),
        Some(other) => Err(LocalError::Unavailable(format!(
            "Corteza sent `{key}` = {other}, not a time"
        ))),
    }
}

fn meta_str(value: &Value, key: &str) -> Option<String> {
    match value.get("meta")?.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Corteza record as the engine sees it; `changed_at` is its latest
/// time (creation, update, deletion) in microseconds.
fn record_from(value: &Value) -> Result<Record, LocalError> {
    let bad = |what: &str| LocalError::Unavailable(format!("Corteza sent a record without {what}"));
    let id = id_of(value, "recordID").ok_or_else(|| bad("a recordID"))?;
    let module_id = id_of(value, "moduleID").ok_or_else(|| bad("a moduleID"))?;
    let mut values = RecordValues::new();
    for v in value
        .get("values")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let (Some(name), Some(text)) = (
            v.get("name").and_then(Value::as_str),
            v.get("value").and_then(Value::as_str),
        ) else {
            continue;
        };
        if v.get("deletedAt").is_some_and(|d| !d.is_null()) {
            continue;
        }
        values
            .entry(name.to_owned())
            .or_default()
            .push(text.to_owned());
    }
    let created_at = time_of(value, "createdAt")?.ok_or_else(|| bad("createdAt"))?;
    let updated_at = time_of(value, "updatedAt")?;
    let deleted_at = time_of(value, "deletedAt")?;
    let changed = [Some(created_at), updated_at, deleted_at]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(created_at);
    Ok(Record {
        id,
        module_id,
        values,
        origin_node_id: meta_str(value, META_NODE).and_then(|n| n.parse().ok()),
        created_at,
        updated_at: updated_at.unwrap_or(created_at),
        deleted_at,
        changed_at: changed.timestamp_micros(),
        revision: value.get("revision").and_then(Value::as_u64).unwrap_or(1),
    })
}

/// A record of a change list as the merge takes it.
fn listed(item: &Value) -> Result<Listed, LocalError> {
    Ok(Listed {
        record: record_from(item)?,
        updated: time_of(item, "updatedAt")?.is_some(),
        received: item.pointer(&format!("/meta/{META_EXTRECORD}")).is_some(),
    })
}

fn values_json(values: &RecordValues) -> Value {
    Value::Array(
        values
            .iter()
            .flat_map(|(name, vs)| vs.iter().map(move |v| json!({ "name": name, "value": v })))
            .collect(),
    )
}

fn module_from(value: &Value) -> Result<LocalModule, LocalError> {
    let bad = |what: &str| LocalError::Unavailable(format!("Corteza sent a module without {what}"));
    let mut fields = Vec::new();
    for f in value
        .get("fields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            continue;
        };
        let kind = f.get("kind").and_then(Value::as_str).unwrap_or("String");
        let Ok(kind) = FieldKind::parse(kind) else {
            tracing::debug!(
                field = name,
                kind,
                "a Corteza field of a kind fedsync does not carry"
            );
            continue;
        };
        fields.push(LocalField {
            name: name.to_owned(),
            kind,
            label: f
                .get("label")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            is_multi: f.get("isMulti").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    let created_at = time_of(value, "createdAt")?.ok_or_else(|| bad("createdAt"))?;
    Ok(LocalModule {
        id: id_of(value, "moduleID").ok_or_else(|| bad("a moduleID"))?,
        namespace_id: id_of(value, "namespaceID").ok_or_else(|| bad("a namespaceID"))?,
        handle: value
            .get("handle")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        name: value
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        fields,
        created_at,
        updated_at: time_of(value, "updatedAt")?.unwrap_or(created_at),
        deleted_at: time_of(value, "deletedAt")?,
    })
}

/// Fields as Corteza's module create and update take them; `ids` keeps the
/// `fieldID` of fields that exist, so their values stay.
fn fields_json(fields: &[LocalField], ids: &HashMap<String, Value>) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| {
                let mut field = json!({
                    "name": f.name,
                    "kind": f.kind.as_str(),
                    "label": f.label,
                    "isMulti": f.is_multi,
                });
                if let Some(id) = ids.get(&f.name) {
                    field["fieldID"] = id.clone();
                }
                field
            })
            .collect(),
    )
}

#[async_trait]
impl LocalData for CortezaData {
    fn kind(&self) -> &'static str {
        "corteza"
    }

    async fn namespace_id(&self) -> Result<Id, LocalError> {
        Ok(self.ns().await?.id)
    }

    async fn list_modules(&self) -> Result<Vec<LocalModule>, LocalError> {
        let path = format!("/compose/namespace/{}/module/", self.ns().await?.id);
        let mut modules = Vec::new();
        self.list_all(&path, &[], |m| {
            modules.push(module_from(m)?);
            Ok(())
        })
        .await?;
        Ok(modules)
    }

    /// By id, handle, or `namespace/module` (the namespace must be ours).
    async fn find_module(&self, key: &str) -> Result<Option<LocalModule>, LocalError> {
        let ns = self.ns().await?;
        let key = match key.split_once('/') {
            Some((space, module)) => {
                if space != ns.slug && space != ns.id.to_string() {
                    return Err(LocalError::Invalid(format!(
                        "`{key}`: fedsync works in Corteza namespace `{}` (id {}), not `{space}`",
                        ns.slug, ns.id
                    )));
                }
                module
            }
            None => key,
        };
        if let Ok(id) = key.parse::<Id>() {
            return match self.read_module(id).await? {
                Some(m) => Ok(Some(module_from(&m)?).filter(|m| m.deleted_at.is_none())),
                None => Ok(None),
            };
        }
        let path = format!("/compose/namespace/{}/module/", ns.id);
        let list = self.get(&path, &[("handle", key.to_owned())]).await?;
        set(&list)
            .iter()
            .find(|m| m.get("handle").and_then(Value::as_str) == Some(key))
            .map(module_from)
            .transpose()
    }

    async fn create_module(&self, module: NewModule) -> Result<LocalModule, LocalError> {
        let path = format!("/compose/namespace/{}/module/", self.ns().await?.id);
        let body = json!({
            "name": module.name,
            "handle": module.handle,
            "fields": fields_json(&module.fields, &HashMap::new()),
            "meta": {},
        });
        match self.call(Method::POST, &path, &[], Some(&body)).await {
            Ok(created) => module_from(&created),
            Err(CallError::Refused { message, .. })
                if message.contains("handle") && message.contains("not unique") =>
            {
                Err(LocalError::Conflict(format!(
                    "a module with handle `{}` already exists",
                    module.handle
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn update_module(&self, module: &LocalModule) -> Result<(), LocalError> {
        let current = self
            .read_module(module.id)
            .await?
            .ok_or_else(|| LocalError::Invalid(format!("Corteza has no module {}", module.id)))?;
        let ids: HashMap<String, Value> = current
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some((
                    f.get("name")?.as_str()?.to_owned(),
                    f.get("fieldID")?.clone(),
                ))
            })
            .collect();
        // Fields of kinds fedsync does not carry are kept as they are.
        let ours: std::collections::HashSet<&str> =
            module.fields.iter().map(|f| f.name.as_str()).collect();
        let mut fields = fields_json(&module.fields, &ids);
        if let (Some(list), Some(theirs)) = (
            fields.as_array_mut(),
            current.get("fields").and_then(Value::as_array),
        ) {
            for f in theirs {
                let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                let kind = f.get("kind").and_then(Value::as_str).unwrap_or_default();
                if !ours.contains(name) && FieldKind::parse(kind).is_err() {
                    list.push(f.clone());
                }
            }
        }
        let body = json!({
            "name": module.name,
            "handle": module.handle,
            "fields": fields,
            "meta": current.get("meta").cloned().unwrap_or_else(|| json!({})),
            "updatedAt": current.get("updatedAt").cloned().unwrap_or(Value::Null),
        });
        self.call(
            Method::POST,
            &self.module_path(module.id).await?,
            &[],
            Some(&body),
        )
        .await?;
        Ok(())
    }

    async fn delete_module(&self, module: &LocalModule) -> Result<(), LocalError> {
        match self
            .call(
                Method::DELETE,
                &self.module_path(module.id).await?,
                &[],
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl LocalRecords for CortezaData {
    /// Writes the records to Corteza, then the rest of the batch (links
    /// with Corteza's ids, cursor, errors, progress) to the store as one
    /// unit. A batch cut between the two is safe to run again: a record
    /// made for an origin record is found by its meta and updated, never
    /// made twice.
    fn polls_for_changes(&self) -> bool {
        true
    }

    async fn newest_change(
        &self,
        module_id: Id,
    ) -> Result<Option<crate::sync::ports::NewestChange>, LocalError> {
        self.look_for_changes(module_id).await
    }

    async fn apply_batch(&self, batch: &RecordBatch) -> Result<Vec<Record>, LocalError> {
        let mut origin_of: HashMap<Id, (NodeId, Id)> = HashMap::new();
        for link in batch.links.iter().chain(&batch.touched) {
            origin_of.insert(link.local_record_id, (link.node_id, link.origin_record_id));
        }
        let mut node_urls: HashMap<NodeId, String> = HashMap::new();
        for (node, _) in origin_of.values() {
            if !node_urls.contains_key(node) {
                let url = self
                    .store
                    .get_node(*node)
                    .await?
                    .map(|n| n.base_url)
                    .unwrap_or_default();
                node_urls.insert(*node, url);
            }
        }
        let meta_for = |record: &Record| {
            origin_of.get(&record.id).map(|(node, origin)| {
                json!({
                    META_FEDERATION: node_urls.get(node).cloned().unwrap_or_default(),
                    META_EXTRECORD: origin.to_string(),
                    META_NODE: node.to_string(),
                })
            })
        };
        // New records are made unless an earlier, cut-off batch made them.
        let run = batch.progress.map(|(run, _)| run);
        let mut linked: HashMap<(NodeId, Id), bool> = HashMap::new();
        for record in batch.records.iter().filter(|r| r.revision == 0) {
            if let Some((node, _)) = origin_of.get(&record.id) {
                let key = (*node, record.module_id);
                if let std::collections::hash_map::Entry::Vacant(e) = linked.entry(key) {
                    e.insert(self.all_linked(key.0, key.1, run).await?);
                }
            }
        }
        let mut renamed: HashMap<Id, Id> = HashMap::new();
        let mut written = Vec::with_capacity(batch.records.len());
        for record in &batch.records {
            let meta = meta_for(record);
            let stored = if record.revision == 0 {
                let before = match origin_of.get(&record.id) {
                    Some((node, origin)) if !linked[&(*node, record.module_id)] => {
                        self.made_before(record.module_id, *node, *origin).await?
                    }
                    _ => None,
                };
                match before {
                    Some(found) if found.deleted_at.is_some() => found,
                    Some(found) => {
                        self.write_record(record, meta.as_ref(), Some(found.id))
                            .await?
                    }
                    None => self.write_record(record, meta.as_ref(), None).await?,
                }
            } else if record.deleted_at.is_some() {
                self.delete_record(record).await?
            } else {
                self.write_record(record, meta.as_ref(), Some(record.id))
                    .await?
            };
            if stored.id != record.id {
                renamed.insert(record.id, stored.id);
            }
            written.push(stored);
        }
        self.remember(&written);
        let links = batch
            .links
            .iter()
            .map(|l| {
                let mut l = l.clone();
                if let Some(id) = renamed.get(&l.local_record_id) {
                    l.local_record_id = *id;
                }
                l
            })
            .collect();
        self.store
            .apply_record_batch(&RecordBatch {
                records: Vec::new(),
                links,
                touched: batch.touched.clone(),
                seen_run: batch.seen_run,
                cursor: batch.cursor.clone(),
                errors: batch.errors.clone(),
                progress: batch.progress,
            })
            .await?;
        Ok(written)
    }

    async fn get_records(&self, ids: &[Id]) -> Result<Vec<Record>, LocalError> {
        self.read_records(None, ids).await
    }

    async fn get_module_records(
        &self,
        module_id: Id,
        ids: &[Id],
    ) -> Result<Vec<Record>, LocalError> {
        self.read_records(Some(module_id), ids).await
    }

    async fn list_records(
        &self,
        module_id: Id,
        include_deleted: bool,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Record>, LocalError> {
        let path = format!("{}/record/", self.module_path(module_id).await?);
        let query = [(
            "deleted",
            if include_deleted { "1" } else { "0" }.to_owned(),
        )];
        let mut out = Vec::new();
        self.list_all(&path, &query, |item| {
            let record = record_from(item)?;
            if after.is_none_or(|a| record.id > a) {
                out.push(record);
            }
            Ok(())
        })
        .await?;
        out.sort_by_key(|r| r.id);
        out.truncate(limit as usize);
        self.remember(&out);
        Ok(out)
    }

    async fn page_changes(&self, query: &ChangeQuery) -> Result<Vec<Record>, LocalError> {
        self.select_changes(query).await
    }

    async fn count_changes(&self, query: &ChangeQuery) -> Result<u64, LocalError> {
        self.count_selected(query).await
    }

    async fn ready(&self) -> Result<(), String> {
        self.check().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_corteza_record_reads_with_its_change_time_and_origin() {
        let value = json!({
            "recordID": "523615839397478601",
            "moduleID": "523615104884015305",
            "revision": 2,
            "values": [
                {"name": "full_name", "value": "Alice"},
                {"name": "labels", "value": "red"},
                {"name": "labels", "value": "blue"},
                {"name": "is_vip"}
            ],
            "meta": {"federation": "", "federation_extrecord": "523615093120041061", "fedsync_node": "42"},
            "createdAt": "2026-11-22T06:16:03Z",
            "updatedAt": "2026-11-22T06:17:18Z"
        });
        let record = record_from(&value).unwrap();
        assert_eq!(record.id.to_string(), "523615839397478601");
        assert_eq!(record.values["labels"], vec!["red", "blue"]);
        assert!(!record.values.contains_key("is_vip"));
        assert_eq!(record.origin_node_id.map(|n| n.get()), Some(42));
        assert_eq!(record.revision, 2);
        assert_eq!(
            record.changed_at,
            DateTime::parse_from_rfc3339("2026-11-22T06:17:18Z")
                .unwrap()
                .timestamp_micros()
        );
        let mut broken = value.clone();
        broken["createdAt"] = json!("yesterday");
        assert!(
            record_from(&broken)
                .unwrap_err()
                .to_string()
                .contains("createdAt")
        );
    }

    /// On tokio's paused clock: nothing sleeps for real.
    #[tokio::test(start_paused = true)]
    async fn requests_are_paced_to_the_configured_rate() {
        let pace = Pace {
            interval: Duration::from_secs(1) / 5,
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        };
        let start = tokio::time::Instant::now();
        for _ in 0..10 {
            pace.wait().await;
        }
        // Ten requests at five a second: the tenth goes 1.8 s after the first.
        assert_eq!(start.elapsed(), Duration::from_millis(1800));
        // An idle spell is not saved up for a burst.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle = tokio::time::Instant::now();
        pace.wait().await;
        pace.wait().await;
        assert_eq!(idle.elapsed(), Duration::from_millis(200));
    }

    /// A response recorded from a stock Corteza server (fixtures S01-S05):
    /// its records and `filter`.
    use std::collections::HashSet;

    fn recorded(text: &str) -> (Vec<Value>, Value) {
        let response = recorded_page(text);
        (set(&response).to_vec(), response["filter"].clone())
    }

    /// The `{filter, set}` Corteza answered in a recorded exchange.
    fn recorded_page(text: &str) -> Value {
        let v: Value = serde_json::from_str(text).unwrap();
        v["response"]["body"]["response"].clone()
    }

    /// Real Corteza takes the lists fedsync reads: one time column at or
    /// after a time, sorted by it (then by ID, which Corteza adds), paged
    /// with `nextPage`; the merge accepts them in that order.
    #[test]
    fn recorded_corteza_lists_sorted_by_time_are_merged_in_order() {
        let pages = [
            (
                ChangeList::Created,
                include_str!(
                    "../../../tests/fixtures/corteza-wire/S01-compose-list-records-by-created-page-1.json"
                ),
            ),
            (
                ChangeList::Created,
                include_str!(
                    "../../../tests/fixtures/corteza-wire/S02-compose-list-records-by-created-page-2.json"
                ),
            ),
            (
                ChangeList::Updated,
                include_str!(
                    "../../../tests/fixtures/corteza-wire/S03-compose-list-records-by-updated.json"
                ),
            ),
            (
                ChangeList::Deleted,
                include_str!(
                    "../../../tests/fixtures/corteza-wire/S04-compose-list-records-by-deleted.json"
                ),
            ),
        ];
        let query = changes::from_the_start(100);
        let mut merge = ChangeMerge::new(&query, i64::MAX);
        let mut read = Vec::new();
        for (list, text) in pages {
            let (items, filter) = recorded(text);
            assert_eq!(filter["sort"], json!(format!("{}, ID", list.sort())));
            assert!(!items.is_empty());
            let page: Vec<Listed> = items.iter().map(|i| listed(i).unwrap()).collect();
            read.extend(page.iter().map(|l| l.record.id));
            let more = filter["nextPage"].as_str().is_some_and(|c| !c.is_empty());
            merge.add(list, page, more).unwrap();
        }
        // Page 2 of the created list (read with page 1's `nextPage`) goes on
        // after page 1: no record twice (the merge checked the time order).
        assert_eq!(read[..4].iter().collect::<HashSet<_>>().len(), 4);
        let served = merge.finish();
        assert!(!served.is_empty());
        assert!(
            served
                .windows(2)
                .all(|w| (w[0].changed_at, w[0].id) < (w[1].changed_at, w[1].id))
        );
    }

    /// Real Corteza answers a query by ids with those records, deleted ones
    /// included (fixture S05).
    #[test]
    fn a_recorded_corteza_list_by_ids_holds_the_records_asked_for() {
        let text = include_str!(
            "../../../tests/fixtures/corteza-wire/S05-compose-list-records-by-ids.json"
        );
        let (items, filter) = recorded(text);
        let asked: Vec<String> = filter["query"]
            .as_str()
            .unwrap()
            .trim_matches(|c| c == '(' || c == ')')
            .split(" OR ")
            .map(|p| p.trim_start_matches("id = ").to_owned())
            .collect();
        let got: Vec<String> = items
            .iter()
            .map(|i| record_from(i).unwrap().id.to_string())
            .collect();
        assert_eq!(got, asked);
        assert!(items.iter().any(|i| !i["deletedAt"].is_null()));
    }

    /// Real Corteza counts the records carrying a peer's meta (removed
    /// ones included) in `filter.total`, and leaves a total of 0 out
    /// (fixtures S06, S07).
    #[test]
    fn a_recorded_corteza_count_of_a_peers_records_is_read() {
        let ours = include_str!(
            "../../../tests/fixtures/corteza-wire/S06-compose-count-records-of-a-peer.json"
        );
        let page = &recorded_page(ours);
        let node: NodeId = page["filter"]["meta"][META_NODE]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(peer_total(page, node), Some(500));
        // The same page read for another peer: not a count of its records.
        let other: NodeId = "1234567".parse().unwrap();
        assert_eq!(peer_total(page, other), None);
        let none = include_str!(
            "../../../tests/fixtures/corteza-wire/S07-compose-count-records-of-another-peer.json"
        );
        let page = &recorded_page(none);
        assert!(page["filter"].get("total").is_none());
        assert_eq!(peer_total(page, other), Some(0));
    }

    /// Real Corteza takes the query that goes on after an id inside a
    /// second, as fedsync writes it, and answers the records of that
    /// second after the id, in (createdAt, ID) order (fixture S09).
    #[test]
    fn a_recorded_corteza_list_goes_on_after_an_id_inside_a_second() {
        let text = include_str!(
            "../../../tests/fixtures/corteza-wire/S09-compose-list-records-after-an-id-in-a-second.json"
        );
        let (items, filter) = recorded(text);
        let query = filter["query"].as_str().unwrap();
        let after: i64 = query
            .rsplit_once("id > ")
            .unwrap()
            .1
            .trim_end_matches(')')
            .parse()
            .unwrap();
        let second = DateTime::parse_from_rfc3339("2026-12-06T18:40:00Z")
            .unwrap()
            .timestamp();
        let ours = CortezaData::since_query("created_at", second, Some(after)).unwrap();
        assert_eq!(ours, ("query", query.to_owned()));
        assert_eq!(filter["sort"], json!("createdAt, ID"));
        let records: Vec<Record> = items.iter().map(|i| record_from(i).unwrap()).collect();
        assert_eq!(records.len(), 3);
        assert!(
            records
                .iter()
                .all(|r| r.id.as_i64() > after && r.created_at.timestamp() == second)
        );
        assert!(records.windows(2).all(|w| w[0].id < w[1].id));
    }

    /// Real Corteza selects by two meta values at once (fixture S08).
    #[test]
    fn a_record_recorded_from_corteza_is_found_by_its_origin() {
        let text = include_str!(
            "../../../tests/fixtures/corteza-wire/S08-compose-find-record-by-origin.json"
        );
        let page = &recorded_page(text);
        let meta = &page["filter"]["meta"];
        let node: NodeId = meta[META_NODE].as_str().unwrap().parse().unwrap();
        let origin: Id = meta[META_EXTRECORD].as_str().unwrap().parse().unwrap();
        assert_eq!(set(page).len(), 1);
        let found = made_for(page, node, origin).expect("the record made for it");
        assert_eq!(found["meta"][META_EXTRECORD], json!(origin.to_string()));
        let elsewhere: Id = "1234567".parse().unwrap();
        assert!(made_for(page, node, elsewhere).is_none());
    }

    #[test]
    fn values_go_back_as_corteza_takes_them() {
        let mut values = RecordValues::new();
        values.insert("tags".into(), vec!["a".into(), "b".into()]);
        values.insert("name".into(), vec!["x".into()]);
        assert_eq!(
            values_json(&values),
            json!([{"name": "name", "value": "x"}, {"name": "tags", "value": "a"}, {"name": "tags", "value": "b"}])
        );
    }
}
