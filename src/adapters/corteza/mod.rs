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
//! behind a cursor. A first page carries no total: Corteza counts by
//! reading every record it counts.
//!
//! How hard Corteza is used follows its latency (`limiter`): an adaptive
//! limit on requests in flight, and an optional cap on requests a second.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use zeroize::Zeroizing;

mod changes;
mod client;
mod json;
mod limiter;
mod live;
mod lookups;
mod modules;
mod read;
#[cfg(test)]
mod tests;
mod write;

use limiter::{Limiter, Pace};
use modules::Namespace;

use crate::domain::{Id, NodeId, Record};
use crate::store::{ChangeQuery, RecordBatch, Store};
use crate::sync::ports::{LocalError, LocalRecords};

/// The meta key Corteza's own federation gives a received record: the
/// origin's record id.
pub const META_EXTRECORD: &str = "federation_extrecord";
/// Where a received record came from (Corteza: the origin node's base URL).
pub const META_FEDERATION: &str = "federation";
/// fedsync's node id of the peer a record came from.
pub const META_NODE: &str = "fedsync_node";

/// A change second is served once this much later (see the module doc).
const SETTLE_SECONDS: i64 = 2;

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
    /// A hard cap on requests a second; none by default (the adaptive
    /// limit alone).
    pub requests_per_second: Option<u32>,
    /// The bound of the adaptive limit on requests in flight.
    pub max_concurrent: u32,
    pub page_size: u32,
    pub timeout: Duration,
}

pub struct CortezaData {
    http: reqwest::Client,
    base: String,
    settings: CortezaSettings,
    store: Arc<dyn Store>,
    limiter: Limiter,
    cap: Option<Pace>,
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
    /// Modules whose last pages of changes held updates or removals: their
    /// lists are read without asking first whether they hold any.
    busy_sides: std::sync::Mutex<std::collections::HashSet<Id>>,
    /// Module -> (the second it was last looked at for changes, the mark
    /// of the newest change seen): see `live.rs`.
    looked: std::sync::Mutex<HashMap<Id, (i64, i64)>>,
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
        Ok(CortezaData {
            http,
            base: settings.url.trim_end_matches('/').to_owned(),
            limiter: Limiter::new(settings.max_concurrent),
            cap: settings.requests_per_second.map(Pace::per_second),
            settings,
            store,
            last_token: std::sync::Mutex::new(None),
            namespace: tokio::sync::OnceCell::new(),
            homes: std::sync::Mutex::new(HashMap::new()),
            no_ids_query: std::sync::atomic::AtomicBool::new(false),
            no_id_continuation: std::sync::atomic::AtomicBool::new(false),
            all_linked_in: std::sync::Mutex::new(HashMap::new()),
            looked: std::sync::Mutex::new(HashMap::new()),
            busy_sides: std::sync::Mutex::new(std::collections::HashSet::new()),
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
}

#[async_trait]
impl LocalRecords for CortezaData {
    /// Corteza does not say when its records change: live changes look.
    fn polls_for_changes(&self) -> bool {
        true
    }

    async fn newest_change(
        &self,
        module_id: Id,
    ) -> Result<Option<crate::sync::ports::NewestChange>, LocalError> {
        self.look_for_changes(module_id).await
    }

    /// Writes the records to Corteza, then the rest of the batch (links
    /// with Corteza's ids, cursor, errors, progress) to the store as one
    /// unit. A batch cut between the two is safe to run again: a record
    /// made for an origin record is found by its meta and updated, never
    /// made twice.
    async fn apply_batch(&self, batch: RecordBatch) -> Result<Vec<Record>, LocalError> {
        self.write_batch(&batch).await
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
        self.list_module_records(module_id, include_deleted, after, limit)
            .await
    }

    async fn page_changes(&self, query: &ChangeQuery) -> Result<Vec<Record>, LocalError> {
        self.select_changes(query).await
    }

    /// Corteza counts by reading every record it counts: a total would
    /// cost a pass over all changes before the first page, so none is
    /// given (the destination shows progress without one).
    async fn count_changes(&self, _query: &ChangeQuery) -> Result<Option<u64>, LocalError> {
        Ok(None)
    }

    fn pacing(&self) -> Option<crate::sync::ports::PacingStatus> {
        Some(self.limiter.status())
    }

    async fn ready(&self) -> Result<(), String> {
        self.check().await
    }
}
