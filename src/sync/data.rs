//! Data: serving our exposed records to a peer (origin), and pulling a
//! peer's records into local records through a mapping (destination).
//!
//! The origin pages by a keyset on (changed_at, id), where changed_at is
//! assigned strictly increasing per module in commit order, so no change can
//! be skipped or repeated: not by updates within one second, not by clock
//! skew between nodes (the keyset is the origin's own), not by a failure
//! between pages. Cursors are signed, bound to the pair and the module, and
//! carry the `lastSync` filter; fedsync destinations also get a `resume`
//! cursor after the last record of every page, so the next run starts there.
//!
//! The destination applies each page in one transaction with the cursor it
//! reached, through the link table (peer, exposed module, origin record) ->
//! local record, so a crash at any point resumes with no loss and no
//! duplicate. For Corteza origins, which page by id and filter by `lastSync`,
//! the watermark is the newest origin timestamp seen and advances only when a
//! run completes; re-delivered records are recognised by their link.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use backon::Retryable;
use serde::{Deserialize, Serialize};

use super::audit;
use super::pairing_flow::PairingService;
use super::ports::{DataPeer, LocalData, LocalRecords, RecordsRequest, RemoteRecord};
use super::runs::{bounded_if_down, run_ms, store_failed};
use super::structure::{ServeError, SyncError};
use crate::crypto::{SigningKey, mac};
use crate::domain::{
    self, Actor, AuditResult, ExposedModule, FieldKind, FieldMapping, Id, IdGenerator, LocalModule,
    ModuleMapping, Node, NodeId, PairingStatus, PeerKind, Record, RecordLink, RunCounts, RunStatus,
    SharedModule, SyncKind, SyncRun, SyncStatus,
};
use crate::mapping::convertible;
use crate::mapping::values::normalize;
use crate::store::{ChangeQuery, CursorWrite, RecordBatch, RunError, Store};

pub const DEFAULT_RECORDS_PAGE: u32 = 100;
pub const MAX_RECORDS_PAGE: u32 = 1000;
/// A pull that needs more pages than this is cut off (a looping origin).
pub const MAX_PAGES: u64 = 1_000_000;
const CURSOR_PURPOSE: &str = "records-page";

// ---------------------------------------------------------------- origin

/// What a records page cursor carries (sealed: a peer cannot forge one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCursor {
    /// Node (pair) and exposed module the cursor belongs to.
    pub n: u64,
    pub m: u64,
    /// The last change served: (changed_at, record id).
    pub c: i64,
    pub i: u64,
    /// The `lastSync` filter, micros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<i64>,
}

/// Seals a records page cursor.
pub fn seal_cursor(key: &SigningKey, cursor: &RecordCursor) -> String {
    let payload = serde_json::to_vec(cursor).unwrap_or_default();
    mac::seal(key, CURSOR_PURPOSE, &payload)
}

/// The records page cursor in `text`, or `None` when this node (with `key`)
/// did not issue it.
pub fn open_cursor(key: &SigningKey, text: &str) -> Option<RecordCursor> {
    mac::open(key, CURSOR_PURPOSE, text).and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// A page request: `lastSync` (unix seconds), `limit`, `pageCursor`.
#[derive(Debug, Clone, Default)]
pub struct RecordsPageRequest {
    pub last_sync: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Count the records still to come (this page's and the later ones').
    pub include_total: bool,
}

/// A page of records ready to encode: values already cut to the exposed fields.
#[derive(Debug, Clone)]
pub struct ServedRecords {
    pub exposure: ExposedModule,
    pub records: Vec<ServedRecord>,
    pub next_cursor: Option<String>,
    pub resume_cursor: String,
    pub limit: u32,
    /// Records in this page and the later ones, when asked.
    pub total: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ServedRecord {
    pub record: Record,
    /// Exposed fields only, multi-value fields repeated.
    pub values: Vec<ServedValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServedValue {
    pub name: String,
    pub value: String,
    /// A reference to a record that came from the reader, as the reader's id.
    pub yours: bool,
}

/// Serves one page of changed records of an exposed module to `node`.
/// Records that arrived from that peer are never sent back to it; records
/// from any peer only when `reexport` is on.
pub async fn serve_records(
    store: &dyn Store,
    records: &dyn LocalRecords,
    key: &SigningKey,
    node: &Node,
    exposed_module_id: &str,
    request: RecordsPageRequest,
    reexport: bool,
) -> Result<ServedRecords, ServeError> {
    let not_found = || ServeError::NotFound("module does not exist".into());
    let exposure = match exposed_module_id.parse::<Id>() {
        Ok(id) => store.get_exposed_module(id).await?,
        Err(_) => None,
    }
    .filter(|e| e.node_id == node.id && e.deleted_at.is_none())
    .ok_or_else(not_found)?;
    let limit = match request.limit {
        None | Some(0) => DEFAULT_RECORDS_PAGE,
        Some(n) => n.min(MAX_RECORDS_PAGE),
    };
    let (after, since) = match &request.cursor {
        Some(text) => {
            let c = open_cursor(key, text).ok_or_else(|| {
                ServeError::BadRequest("pageCursor is not a cursor this node issued".into())
            })?;
            if c.n != node.id.get() || c.m != exposure.id.get() {
                return Err(ServeError::BadRequest(
                    "pageCursor belongs to another pair or module".into(),
                ));
            }
            (Id::new(c.i).map(|i| (c.c, i)), c.s)
        }
        None => {
            if request.last_sync.is_some_and(|t| t < 0) {
                return Err(ServeError::BadRequest(
                    "lastSync must not be negative".into(),
                ));
            }
            (
                None,
                request
                    .last_sync
                    .filter(|t| *t > 0)
                    .map(|t| t.saturating_mul(1_000_000)),
            )
        }
    };
    let query = ChangeQuery {
        module_id: exposure.module_id,
        after,
        since,
        exclude_origin: Some(node.id),
        exclude_received: !reexport,
        limit: limit + 1,
    };
    let mut page = records
        .page_changes(&query)
        .await
        .map_err(|e| ServeError::Local(e.to_string()))?;
    let total = if request.include_total {
        Some(
            records
                .count_changes(&query)
                .await
                .map_err(|e| ServeError::Local(e.to_string()))?,
        )
    } else {
        None
    };
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let (last_changed, last_id) = match page.last() {
        Some(r) => (r.changed_at, r.id.get()),
        None => after.map(|(c, i)| (c, i.get())).unwrap_or((0, 0)),
    };
    let cursor = |c: i64, i: u64| {
        seal_cursor(
            key,
            &RecordCursor {
                n: node.id.get(),
                m: exposure.id.get(),
                c,
                i,
                s: since,
            },
        )
    };
    let resume_cursor = cursor(last_changed, last_id);
    let exposed: Vec<(&str, bool)> = exposure
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.kind.eq_ignore_ascii_case("Record")))
        .collect();
    // References to records that are our copies of the reader's records go
    // back as the reader's own ids.
    let referenced: Vec<Id> = page
        .iter()
        .flat_map(|record| {
            exposed
                .iter()
                .filter(|(_, is_ref)| *is_ref)
                .filter_map(|(name, _)| record.values.get(*name))
                .flatten()
                .filter_map(|v| v.parse::<Id>().ok())
        })
        .collect();
    let returned: HashMap<Id, Id> = store
        .find_links_by_local(node.id, &referenced)
        .await?
        .into_iter()
        .map(|l| (l.local_record_id, l.origin_record_id))
        .collect();
    let records = page
        .into_iter()
        .map(|record| {
            let mut values = Vec::new();
            for (name, is_ref) in &exposed {
                for value in record.values.get(*name).into_iter().flatten() {
                    let theirs = is_ref
                        .then(|| value.parse::<Id>().ok().and_then(|id| returned.get(&id)))
                        .flatten();
                    values.push(ServedValue {
                        name: name.to_string(),
                        value: theirs.map_or_else(|| value.clone(), |id| id.to_string()),
                        yours: theirs.is_some(),
                    });
                }
            }
            ServedRecord { record, values }
        })
        .collect();
    Ok(ServedRecords {
        exposure,
        records,
        next_cursor: more.then(|| resume_cursor.clone()),
        resume_cursor,
        limit,
        total,
    })
}

// ----------------------------------------------------------- destination

/// The destination side of data sync.
pub struct DataSync {
    store: Arc<dyn Store>,
    local: Arc<dyn LocalData>,
    records: Arc<dyn LocalRecords>,
    pairing: Arc<PairingService>,
    peer: Arc<dyn DataPeer>,
    ids: Arc<IdGenerator>,
    /// This process, as written into its runs.
    owner: String,
    page_size: u32,
    running: Mutex<HashMap<(NodeId, Id), JobLock>>,
    progress: super::progress::ProgressBus,
}

/// Held while one (node, shared module) pull runs, so pulls never overlap.
type JobLock = Arc<tokio::sync::Mutex<()>>;

/// A mapping entry that still fits both modules.
struct Usable<'a> {
    mapping: &'a FieldMapping,
    dest_kind: FieldKind,
    dest_multi: bool,
}

impl DataSync {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        local: Arc<dyn LocalData>,
        records: Arc<dyn LocalRecords>,
        pairing: Arc<PairingService>,
        peer: Arc<dyn DataPeer>,
        ids: Arc<IdGenerator>,
        page_size: u32,
        owner: String,
    ) -> DataSync {
        DataSync {
            store,
            local,
            records,
            pairing,
            peer,
            ids,
            owner,
            page_size: page_size.clamp(1, MAX_RECORDS_PAGE),
            running: Mutex::new(HashMap::new()),
            progress: super::progress::ProgressBus::new(),
        }
    }

    /// Where runs report their progress page by page.
    pub fn progress(&self) -> &super::progress::ProgressBus {
        &self.progress
    }

    /// Pulls every mapped shared module of the node; one run each.
    pub async fn run_node(
        &self,
        node_id: NodeId,
        trigger: &str,
    ) -> Result<Vec<SyncRun>, SyncError> {
        let runs = self.run_modules(node_id, None, trigger, false).await?;
        Ok(runs.into_iter().map(|(run, _)| run).collect())
    }

    /// Pulls one mapped shared module (a scheduled job); the run, and why it
    /// failed when it did.
    pub async fn run_shared(
        &self,
        node_id: NodeId,
        shared_module_id: Id,
        trigger: &str,
    ) -> Result<(SyncRun, Option<SyncError>), SyncError> {
        let mut runs = self
            .run_modules(node_id, Some(shared_module_id), trigger, false)
            .await?;
        Ok(runs.remove(0))
    }

    /// Forgets where pulls stand and pulls everything again; local copies
    /// of records the origin no longer has are removed.
    pub async fn reset(
        &self,
        node_id: NodeId,
        shared: Option<Id>,
        trigger: &str,
    ) -> Result<Vec<SyncRun>, SyncError> {
        self.store.delete_sync_cursors(node_id, shared).await?;
        let runs = self.run_modules(node_id, shared, trigger, true).await?;
        Ok(runs.into_iter().map(|(run, _)| run).collect())
    }

    async fn run_modules(
        &self,
        node_id: NodeId,
        only: Option<Id>,
        trigger: &str,
        full: bool,
    ) -> Result<Vec<(SyncRun, Option<SyncError>)>, SyncError> {
        let node = self.paired_node(node_id).await?;
        let mappings: Vec<ModuleMapping> = self
            .store
            .list_mappings(node_id)
            .await?
            .into_iter()
            .filter(|m| only.is_none_or(|id| id == m.shared_module_id))
            .collect();
        if mappings.is_empty() {
            return Err(SyncError::WrongState(format!(
                "node {node_id} has no mapped shared module to pull; map one with `fedsync map set`"
            )));
        }
        self.store
            .set_sync_state(node_id, SyncKind::Data, SyncStatus::Syncing, None, "")
            .await?;
        let mut runs = Vec::new();
        let mut failure = None;
        for mapping in mappings {
            let (run, error) = self.run_module(&node, &mapping, trigger, full).await?;
            if run.status == RunStatus::Failed && failure.is_none() {
                failure = Some(run.error.clone());
            }
            runs.push((run, error));
        }
        match failure {
            None => {
                self.store
                    .set_sync_state(
                        node_id,
                        SyncKind::Data,
                        SyncStatus::Synced,
                        Some(domain::now()),
                        "",
                    )
                    .await?
            }
            Some(error) => {
                let down = runs
                    .iter()
                    .any(|(_, e)| e.as_ref().is_some_and(store_failed));
                bounded_if_down(
                    down,
                    self.store.set_sync_state(
                        node_id,
                        SyncKind::Data,
                        SyncStatus::Failed,
                        None,
                        &error,
                    ),
                )
                .await?
            }
        }
        Ok(runs)
    }

    async fn paired_node(&self, node_id: NodeId) -> Result<Node, SyncError> {
        match self.store.get_node(node_id).await? {
            Some(node) if node.deleted_at.is_none() && node.status == PairingStatus::Paired => {
                Ok(node)
            }
            Some(node) if node.deleted_at.is_none() => Err(SyncError::WrongState(format!(
                "node {node_id} is {}, not paired; data is pulled only from paired nodes",
                node.status.as_str()
            ))),
            _ => Err(SyncError::NotFound(node_id)),
        }
    }

    /// One run for one shared module; waits while another run of the same
    /// module is in progress. Failures are recorded in the run, not returned.
    async fn run_module(
        &self,
        node: &Node,
        mapping: &ModuleMapping,
        trigger: &str,
        full: bool,
    ) -> Result<(SyncRun, Option<SyncError>), SyncError> {
        let lock = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running
                .entry((node.id, mapping.shared_module_id))
                .or_default()
                .clone()
        };
        let _guard = lock.lock().await;
        let mut run = SyncRun {
            id: self.ids.next_id(),
            node_id: node.id,
            kind: SyncKind::Data,
            shared_module_id: Some(mapping.shared_module_id),
            trigger: trigger.to_owned(),
            status: RunStatus::Running,
            started_at: domain::now(),
            finished_at: None,
            counts: RunCounts::default(),
            error: String::new(),
            owner: self.owner.clone(),
        };
        self.store.insert_sync_run(&run).await?;
        self.progress.publish(&run, None);
        let mut total = None;
        let outcome = self.pull(node, mapping, &mut run, full, &mut total).await;
        run.finished_at = Some(domain::now());
        let failure = match outcome {
            Ok(()) => {
                run.status = RunStatus::Succeeded;
                tracing::info!(node_id = %node.id, kind = "data", shared_module_id = %mapping.shared_module_id, created = run.counts.created, updated = run.counts.updated, deleted = run.counts.deleted, skipped = run.counts.skipped, errors = run.counts.errors, pages = run.counts.pages, duration_ms = run_ms(&run), "sync run finished");
                None
            }
            Err(error) => {
                run.status = RunStatus::Failed;
                run.error = error.to_string();
                tracing::warn!(node_id = %node.id, kind = "data", shared_module_id = %mapping.shared_module_id, error = %error, pages = run.counts.pages, duration_ms = run_ms(&run), "sync run failed");
                let event = audit::event(
                    &self.ids,
                    &Actor::system(),
                    "sync.failed",
                    AuditResult::Failed,
                    Some(node.id),
                    "data",
                    serde_json::json!({ "error": run.error, "sharedModuleId": mapping.shared_module_id.to_string() }),
                );
                let _ =
                    bounded_if_down(store_failed(&error), self.store.append_audit(&event)).await;
                Some(error)
            }
        };
        let store_down = failure.as_ref().is_some_and(store_failed);
        bounded_if_down(store_down, self.store.finish_sync_run(&run)).await?;
        self.progress.publish(&run, total);
        Ok((run, failure))
    }

    async fn pull(
        &self,
        node: &Node,
        mapping: &ModuleMapping,
        run: &mut SyncRun,
        full: bool,
        total: &mut Option<u64>,
    ) -> Result<(), SyncError> {
        let shared = self
            .store
            .get_shared_module(mapping.shared_module_id)
            .await?
            .ok_or_else(|| {
                SyncError::WrongState("the shared module of this mapping is gone".into())
            })?;
        let local = self
            .local
            .find_module(&mapping.local_module_id.to_string())
            .await
            .map_err(SyncError::from)?
            .ok_or_else(|| {
                SyncError::WrongState(format!(
                    "local module {} was removed; map `{}` again",
                    mapping.local_module_id, shared.handle
                ))
            })?;
        let usable = usable_fields(mapping, &shared, &local);
        if usable.is_empty() {
            return Err(SyncError::WrongState(format!(
                "the mapping of `{}` has no field that still fits ({}); run `fedsync map set` again",
                shared.handle, mapping.status_reason
            )));
        }
        let token = self
            .pairing
            .peer_token(node.id)
            .await
            .map_err(|e| SyncError::WrongState(e.to_string()))?
            .ok_or_else(|| {
                SyncError::WrongState(format!(
                    "node {} holds no token from the peer; pair again",
                    node.id
                ))
            })?;
        let shared_id = node.shared_node_id.unwrap_or(node.id);
        let ours = node.peer_kind == PeerKind::Fedsync;
        let start = self.store.get_sync_cursor(node.id, shared.id).await?;
        let mut cursor = start
            .as_ref()
            .map(|c| c.cursor.clone())
            .filter(|c| ours && !c.is_empty());
        let previous_watermark = start.as_ref().map(|c| c.last_sync).unwrap_or(0);
        let mut watermark = previous_watermark;
        let mut seen_cursors = HashSet::new();
        let mut seq = 0u64;
        let fetch = |request: RecordsRequest| {
            let (token, base_url) = (&token, &node.base_url);
            async move {
                (|| {
                    self.peer.records_page(
                        base_url,
                        shared_id,
                        shared.external_module_id,
                        token,
                        &request,
                    )
                })
                .retry(super::ports::page_retry())
                .when(super::ports::retry_page)
                .adjust(super::ports::page_wait)
                .await
                .map_err(SyncError::from)
            }
        };
        let mut page = fetch(RecordsRequest {
            limit: self.page_size,
            cursor: cursor.clone(),
            last_sync: (!ours && previous_watermark > 0).then_some(previous_watermark),
            include_total: ours,
        })
        .await?;
        // The highest origin record id of the pages so far (Corteza origins).
        let mut highest: Option<Id> = None;
        loop {
            run.counts.pages += 1;
            if !ours {
                // Corteza pages by record id: a page that goes back is a
                // loop, however fresh its cursor (the seen set cannot tell).
                let lowest = page.records.iter().map(|r| r.id).min();
                if let (Some(high), Some(low)) = (highest, lowest)
                    && low <= high
                {
                    return Err(SyncError::Protocol(format!(
                        "the origin went back from record {high} to {low}: its page cursor loops (Corteza pages by record id)"
                    )));
                }
                highest = highest.max(page.records.iter().map(|r| r.id).max());
            }
            if total.is_none() {
                *total = page.total;
            }
            for r in &page.records {
                if let Some(t) = [r.created_at, r.updated_at, r.deleted_at]
                    .into_iter()
                    .flatten()
                    .max()
                {
                    watermark = watermark.max(t.timestamp());
                }
            }
            let last = page.next_cursor.is_none();
            // The page after this one, if the cursor is sound.
            let next = match &page.next_cursor {
                None => Ok(None),
                // No origin sends a next page after an empty one: a loop
                // with fresh cursors, which the seen set cannot catch.
                Some(_) if page.records.is_empty() => Err(SyncError::Protocol(
                    "the origin sent a page cursor but no record on the page".into(),
                )),
                Some(next) if !seen_cursors.insert(next.clone()) => Err(SyncError::Protocol(
                    "the origin sent the same page cursor twice".into(),
                )),
                Some(_) if run.counts.pages >= MAX_PAGES => Err(SyncError::Protocol(format!(
                    "the origin sent more than {MAX_PAGES} pages"
                ))),
                Some(next) => Ok(Some(next.clone())),
            };
            let write = async {
                let mut batch = self
                    .transform(
                        node,
                        &shared,
                        &local,
                        &usable,
                        &page.records,
                        run,
                        &mut seq,
                        full,
                    )
                    .await?;
                batch.cursor = if ours {
                    page.resume_cursor
                        .clone()
                        .or_else(|| cursor.clone())
                        .map(|c| CursorWrite {
                            node_id: node.id,
                            shared_module_id: shared.id,
                            cursor: c,
                            last_sync: 0,
                        })
                } else if last {
                    Some(CursorWrite {
                        node_id: node.id,
                        shared_module_id: shared.id,
                        cursor: String::new(),
                        last_sync: watermark,
                    })
                } else {
                    None
                };
                batch.progress = Some((run.id, run.counts));
                self.records
                    .apply_batch(&batch)
                    .await
                    .map_err(SyncError::from)?;
                self.progress.publish(run, *total);
                Ok::<_, SyncError>(())
            };
            // The next page is fetched while this one is written: the
            // origin, the network and our database work at once.
            let prefetch = async {
                match &next {
                    Ok(Some(next)) => Some(
                        fetch(RecordsRequest {
                            limit: self.page_size,
                            cursor: Some(next.clone()),
                            last_sync: None,
                            include_total: false,
                        })
                        .await,
                    ),
                    _ => None,
                }
            };
            let (written, fetched) = tokio::join!(write, prefetch);
            written?;
            match (next?, fetched) {
                (Some(next), Some(fetched)) => {
                    cursor = Some(next);
                    page = fetched?;
                }
                _ => break,
            }
        }
        if full {
            self.remove_unseen(node, &shared, run).await?;
        }
        Ok(())
    }

    /// Turns a page of origin records into local writes.
    #[allow(clippy::too_many_arguments)]
    async fn transform(
        &self,
        node: &Node,
        shared: &SharedModule,
        local: &LocalModule,
        usable: &[Usable<'_>],
        page: &[RemoteRecord],
        run: &mut SyncRun,
        seq: &mut u64,
        full: bool,
    ) -> Result<RecordBatch, SyncError> {
        let now = domain::now();
        let origin_ids: Vec<Id> = page.iter().map(|r| r.id).collect();
        let links: HashMap<Id, RecordLink> = self
            .store
            .find_links(node.id, shared.external_module_id, &origin_ids)
            .await?
            .into_iter()
            .map(|l| (l.origin_record_id, l))
            .collect();
        let local_ids: Vec<Id> = links.values().map(|l| l.local_record_id).collect();
        let mut current: HashMap<Id, Record> = self
            .records
            .get_module_records(local.id, &local_ids)
            .await
            .map_err(SyncError::from)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        // Record references of the pair, translated to local ids.
        let referenced: Vec<Id> = page
            .iter()
            .flat_map(|r| {
                usable
                    .iter()
                    .filter(|u| u.dest_kind == FieldKind::Record)
                    .flat_map(move |u| origin_values(r, &u.mapping.origin.name))
                    .filter_map(|v| v.parse::<Id>().ok())
            })
            .collect();
        let translations: HashMap<Id, Id> = self
            .store
            .find_links_any_module(node.id, &referenced)
            .await?
            .into_iter()
            .map(|l| (l.origin_record_id, l.local_record_id))
            .collect();
        // References the origin sent back as our own ids: kept if the record
        // is still here.
        let ours: Vec<Id> = page
            .iter()
            .flat_map(|r| r.values.iter().filter(|v| v.yours))
            .filter_map(|v| v.value.as_deref()?.parse::<Id>().ok())
            .collect();
        let own: HashSet<Id> = if ours.is_empty() {
            HashSet::new()
        } else {
            self.records
                .get_records(&ours)
                .await
                .map_err(SyncError::from)?
                .into_iter()
                .filter(|r| r.deleted_at.is_none())
                .map(|r| r.id)
                .collect()
        };
        let refs = References {
            translations: &translations,
            own: &own,
        };

        let mut batch = RecordBatch {
            seen_run: if full { run.id.as_i64() } else { 0 },
            ..Default::default()
        };
        let mut written: HashMap<Id, usize> = HashMap::new();
        let mut new_links: HashMap<Id, RecordLink> = HashMap::new();
        for remote in page {
            let origin_changed = [remote.created_at, remote.updated_at, remote.deleted_at]
                .into_iter()
                .flatten()
                .max()
                .map(|t| t.timestamp_micros())
                .unwrap_or(0);
            let link = new_links.get(&remote.id).or(links.get(&remote.id)).cloned();
            let existing = link
                .as_ref()
                .and_then(|l| current.get(&l.local_record_id))
                .cloned();
            let mut record = if remote.deleted_at.is_some() {
                match existing {
                    Some(mut record) if record.deleted_at.is_none() => {
                        record.deleted_at = Some(now);
                        record.updated_at = now;
                        run.counts.deleted += 1;
                        Some(record)
                    }
                    _ => {
                        run.counts.skipped += 1;
                        None
                    }
                }
            } else {
                let mapped = self.map_values(remote, usable, &refs, run, seq, &mut batch.errors);
                match existing {
                    Some(record) if record.deleted_at.is_some() => {
                        // Removed here: the origin does not bring it back.
                        run.counts.skipped += 1;
                        None
                    }
                    Some(mut record) => {
                        let before = record.values.clone();
                        for u in usable {
                            let name = &u.mapping.destination.name;
                            match mapped.get(name) {
                                Some(values) => {
                                    record.values.insert(name.clone(), values.clone());
                                }
                                None => {
                                    record.values.remove(name);
                                }
                            }
                        }
                        if record.values == before {
                            // Nothing to write (a re-delivery, a reset).
                            run.counts.skipped += 1;
                            None
                        } else {
                            record.updated_at = now;
                            run.counts.updated += 1;
                            Some(record)
                        }
                    }
                    None => {
                        run.counts.created += 1;
                        Some(Record {
                            id: self.ids.next_id(),
                            module_id: local.id,
                            values: mapped,
                            origin_node_id: Some(node.id),
                            created_at: now,
                            updated_at: now,
                            deleted_at: None,
                            changed_at: 0,
                            revision: 0,
                        })
                    }
                }
            };
            let local_record_id = record
                .as_ref()
                .map(|r| r.id)
                .or(link.as_ref().map(|l| l.local_record_id));
            if let Some(local_record_id) = local_record_id {
                let l = RecordLink {
                    node_id: node.id,
                    exposed_module_id: shared.external_module_id,
                    origin_record_id: remote.id,
                    local_module_id: local.id,
                    local_record_id,
                    origin_changed_at: origin_changed,
                    created_at: link.as_ref().map(|l| l.created_at).unwrap_or(now),
                    updated_at: now,
                };
                new_links.insert(remote.id, l);
            }
            if let Some(record) = record.take() {
                // The same origin record twice in a page: the later wins.
                current.insert(record.id, record.clone());
                match written.get(&record.id) {
                    Some(&index) => batch.records[index] = record,
                    None => {
                        written.insert(record.id, batch.records.len());
                        batch.records.push(record);
                    }
                }
            }
        }
        // Links that stay as they were but for their timestamps are only
        // touched (a full re-pull marks every link seen, so it writes all).
        for link in new_links.into_values() {
            let unmoved = links.get(&link.origin_record_id).is_some_and(|old| {
                old.local_module_id == link.local_module_id
                    && old.local_record_id == link.local_record_id
            });
            if unmoved && !full {
                batch.touched.push(link);
            } else {
                batch.links.push(link);
            }
        }
        Ok(batch)
    }

    /// The mapped values of one origin record, converted; values that do not
    /// fit are reported, never written wrong.
    fn map_values(
        &self,
        remote: &RemoteRecord,
        usable: &[Usable<'_>],
        refs: &References<'_>,
        run: &mut SyncRun,
        seq: &mut u64,
        errors: &mut Vec<RunError>,
    ) -> crate::domain::RecordValues {
        let mut out = crate::domain::RecordValues::new();
        for u in usable {
            let mut converted = Vec::new();
            for (value, yours) in origin_values_with_bool(remote, &u.mapping.origin) {
                let result = if u.dest_kind == FieldKind::Record {
                    value
                        .parse::<Id>()
                        .ok()
                        .and_then(|id| {
                            if yours {
                                refs.own.get(&id).copied()
                            } else {
                                refs.translations.get(&id).copied()
                            }
                        })
                        .map(|local| local.to_string())
                        .ok_or_else(|| {
                            format!("`{value}` is not a record of this peer that arrived here")
                        })
                } else {
                    normalize(u.dest_kind, &value)
                };
                match result {
                    Ok(v) => converted.push(v),
                    Err(e) => {
                        run.counts.errors += 1;
                        *seq += 1;
                        errors.push(RunError {
                            run_id: run.id,
                            seq: *seq,
                            origin_record_id: Some(remote.id),
                            message: format!(
                                "{} -> {}: {e}",
                                u.mapping.origin.name, u.mapping.destination.name
                            ),
                        });
                    }
                }
            }
            if !u.dest_multi {
                converted.truncate(1);
            }
            if !converted.is_empty() {
                out.insert(u.mapping.destination.name.clone(), converted);
            }
        }
        out
    }

    /// After a full pull: local copies of records the origin no longer has.
    async fn remove_unseen(
        &self,
        node: &Node,
        shared: &SharedModule,
        run: &mut SyncRun,
    ) -> Result<(), SyncError> {
        let mut after = None;
        loop {
            let unseen = self
                .store
                .links_not_seen(
                    node.id,
                    shared.external_module_id,
                    run.id.as_i64(),
                    after,
                    500,
                )
                .await?;
            let Some(last) = unseen.last() else { break };
            after = Some(last.origin_record_id);
            let ids: Vec<Id> = unseen.iter().map(|l| l.local_record_id).collect();
            let now = domain::now();
            let mut batch = RecordBatch::default();
            for mut record in self
                .records
                .get_module_records(last.local_module_id, &ids)
                .await
                .map_err(SyncError::from)?
            {
                if record.deleted_at.is_none() {
                    record.deleted_at = Some(now);
                    record.updated_at = now;
                    run.counts.deleted += 1;
                    batch.records.push(record);
                }
            }
            self.records
                .apply_batch(&batch)
                .await
                .map_err(SyncError::from)?;
        }
        Ok(())
    }
}

fn usable_fields<'a>(
    mapping: &'a ModuleMapping,
    shared: &SharedModule,
    local: &LocalModule,
) -> Vec<Usable<'a>> {
    mapping
        .fields
        .iter()
        .filter_map(|m| {
            let origin = shared.field(&m.origin.name)?;
            let dest = local.field(&m.destination.name)?;
            convertible(&origin.kind, origin.is_multi, dest).ok()?;
            Some(Usable {
                mapping: m,
                dest_kind: dest.kind,
                dest_multi: dest.is_multi,
            })
        })
        .collect()
}

/// Origin values of a field that are references of the origin's (not ours).
fn origin_values<'a>(remote: &'a RemoteRecord, name: &'a str) -> impl Iterator<Item = String> + 'a {
    remote
        .values
        .iter()
        .filter(move |v| v.name == name && !v.yours)
        .filter_map(|v| v.value.clone())
}

/// Values of an origin field, each with its `yours` flag; Corteza sends a
/// false Bool as a name without value.
fn origin_values_with_bool(
    remote: &RemoteRecord,
    origin: &crate::domain::ModuleField,
) -> Vec<(String, bool)> {
    let is_bool = origin.kind.eq_ignore_ascii_case("Bool");
    remote
        .values
        .iter()
        .filter(|v| v.name == origin.name)
        .filter_map(|v| match &v.value {
            Some(value) => Some((value.clone(), v.yours)),
            None if is_bool => Some(("0".to_owned(), false)),
            None => None,
        })
        .collect()
}

/// How Record-field values become local ids.
struct References<'a> {
    /// Origin record id -> our copy of it.
    translations: &'a HashMap<Id, Id>,
    /// Our own records the origin referenced (sent back as ours).
    own: &'a HashSet<Id>,
}

#[cfg(test)]
mod tests {
    use super::*;

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn cursor() -> impl Strategy<Value = RecordCursor> {
            (
                any::<u64>(),
                any::<u64>(),
                any::<i64>(),
                any::<u64>(),
                proptest::option::of(any::<i64>()),
            )
                .prop_map(|(n, m, c, i, s)| RecordCursor { n, m, c, i, s })
        }

        crate::sync::sealed_cursor_properties!(crate::sync::structure::open_cursor);
    }
}
