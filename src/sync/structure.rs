//! Structure: serving our exposed modules to a peer page by page (origin),
//! and pulling a peer's exposed modules into shared modules (destination).
//!
//! Serving pages by a keyset on the exposed module id, with opaque,
//! tamper-evident, pair-bound cursors that carry the `lastSync` filter (a
//! Corteza destination drops `lastSync` on the next page). Pulling reads
//! every page, then writes all changes in one transaction: created, changed
//! and removed shared modules, and the status of every mapping they touch.
//! A changed structure freezes nothing (Corteza W18): new fields arrive
//! unmapped, mappings of removed fields are marked broken with the reason.

use backon::Retryable;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::audit;
use super::pairing_flow::PairingService;
use super::ports::{PeerError, RemoteModule, StructurePeer};
use super::runs::{bounded_if_down, run_ms};
use crate::crypto::{SigningKey, mac};
use crate::domain::{
    self, Actor, AuditResult, ExposedModule, Id, IdGenerator, MappingStatus, Node, NodeId,
    PairingStatus, RunCounts, RunStatus, SharedModule, SyncKind, SyncRun, SyncStatus, Timestamp,
};
use crate::mapping::check_mapping;
use crate::store::{ExposedPageQuery, Store, StoreError, StructureChange};

/// Rows per page when the peer asks for none or for too many.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 500;
/// A pull that needs more pages than this is cut off (a looping origin).
pub const MAX_PAGES: u64 = 10_000;
const CURSOR_PURPOSE: &str = "structure-page";

/// What a page request asked for.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Corteza's `lastSync`: unix seconds.
    pub last_sync: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A page of exposed modules, ready to encode.
#[derive(Debug, Clone)]
pub struct ServedPage {
    pub modules: Vec<ExposedModule>,
    pub next_cursor: Option<String>,
    pub last_sync: i64,
    pub limit: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the local data plane failed: {0}")]
    Local(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a structure page cursor carries (sealed: a peer cannot forge one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorPayload {
    /// The node (pair) the cursor belongs to.
    pub n: u64,
    /// The last exposed module id served.
    pub a: u64,
    /// The `lastSync` filter, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<i64>,
}

/// Seals a structure page cursor.
pub fn seal_cursor(key: &SigningKey, cursor: &CursorPayload) -> String {
    let payload = serde_json::to_vec(cursor).unwrap_or_default();
    mac::seal(key, CURSOR_PURPOSE, &payload)
}

/// The structure page cursor in `text`, or `None` when this node (with
/// `key`) did not issue it.
pub fn open_cursor(key: &SigningKey, text: &str) -> Option<CursorPayload> {
    mac::open(key, CURSOR_PURPOSE, text).and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// Serves one page of `node`'s exposed modules. Tombstones (unexposed
/// modules) are served only to peers that understand them.
pub async fn serve_page(
    store: &dyn Store,
    key: &SigningKey,
    node: &Node,
    include_deleted: bool,
    request: PageRequest,
) -> Result<ServedPage, ServeError> {
    let limit = match request.limit {
        None | Some(0) => DEFAULT_PAGE_SIZE,
        Some(n) => n.min(MAX_PAGE_SIZE),
    };
    let (after, last_sync) = match &request.cursor {
        Some(text) => {
            let payload = open_cursor(key, text).ok_or_else(|| {
                ServeError::BadRequest("pageCursor is not a cursor this node issued".into())
            })?;
            if payload.n != node.id.get() {
                return Err(ServeError::BadRequest(
                    "pageCursor belongs to another pair".into(),
                ));
            }
            (Id::new(payload.a), payload.s)
        }
        None => (None, request.last_sync),
    };
    if let Some(t) = last_sync
        && t < 0
    {
        return Err(ServeError::BadRequest(
            "lastSync must not be negative".into(),
        ));
    }
    let since = last_sync
        .filter(|t| *t > 0)
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    let mut modules = store
        .page_exposed_modules(&ExposedPageQuery {
            node_id: node.id,
            since,
            after,
            include_deleted,
            limit: limit + 1,
        })
        .await?;
    let next_cursor = if modules.len() > limit as usize {
        modules.truncate(limit as usize);
        let last = modules.last().map(|m| m.id.get()).unwrap_or(0);
        Some(seal_cursor(
            key,
            &CursorPayload {
                n: node.id.get(),
                a: last,
                s: last_sync,
            },
        ))
    } else {
        None
    };
    Ok(ServedPage {
        modules,
        next_cursor,
        last_sync: last_sync.unwrap_or(0),
        limit,
    })
}

/// Why a structure sync did not run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("node {0} does not exist")]
    NotFound(NodeId),
    #[error("{0}")]
    WrongState(String),
    #[error("the origin failed: {0}")]
    Peer(#[from] PeerError),
    #[error("{0}")]
    Protocol(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The local data plane (a Corteza beside us) cannot be reached now.
    #[error("{0}")]
    LocalUnavailable(String),
}

impl From<super::ports::LocalError> for SyncError {
    /// An unreachable data plane is retried; a refusal is an admin's to fix.
    fn from(error: super::ports::LocalError) -> SyncError {
        use super::ports::LocalError;
        match error {
            LocalError::Unavailable(_) => SyncError::LocalUnavailable(error.to_string()),
            LocalError::Store(e) => SyncError::Store(e),
            other => SyncError::WrongState(other.to_string()),
        }
    }
}

/// The destination side of structure sync.
pub struct StructureSync {
    store: Arc<dyn Store>,
    pairing: Arc<PairingService>,
    peer: Arc<dyn StructurePeer>,
    ids: Arc<IdGenerator>,
    /// This process, as written into its runs.
    owner: String,
    page_size: u32,
    running: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>>,
    /// Who hears of mappings a structure change broke.
    notices: Option<Arc<super::Notices>>,
    /// Asked to learn what the peer can do after each pull.
    live: Option<Arc<super::live::LiveChanges>>,
}

impl StructureSync {
    pub fn new(
        store: Arc<dyn Store>,
        pairing: Arc<PairingService>,
        peer: Arc<dyn StructurePeer>,
        ids: Arc<IdGenerator>,
        page_size: u32,
        owner: String,
    ) -> StructureSync {
        StructureSync {
            store,
            pairing,
            peer,
            ids,
            owner,
            page_size: page_size.clamp(1, MAX_PAGE_SIZE),
            running: Mutex::new(HashMap::new()),
            notices: None,
            live: None,
        }
    }

    /// After each successful pull, the peer's capabilities are fetched
    /// again through `live` (a fedsync peer that was upgraded says so).
    pub fn with_live(mut self, live: Arc<super::live::LiveChanges>) -> StructureSync {
        self.live = Some(live);
        self
    }

    /// Mappings a structure change breaks are reported through `notices`.
    pub fn with_notices(mut self, notices: Arc<super::Notices>) -> StructureSync {
        self.notices = Some(notices);
        self
    }

    /// Pulls the node's exposed modules now and returns the finished run.
    /// Two pulls of one node never overlap: a second waits for the first.
    pub async fn run(&self, node_id: NodeId, trigger: &str) -> Result<SyncRun, SyncError> {
        match self.run_attempt(node_id, trigger).await {
            (Some(run), None) => Ok(run),
            (_, Some(error)) => Err(error),
            (None, None) => Err(SyncError::NotFound(node_id)),
        }
    }

    /// One pull: the run it recorded (none when it could not start), and
    /// why it failed when it did.
    pub async fn run_attempt(
        &self,
        node_id: NodeId,
        trigger: &str,
    ) -> (Option<SyncRun>, Option<SyncError>) {
        match self.run_inner(node_id, trigger).await {
            Ok((run, error)) => (Some(run), error),
            Err(error) => (None, Some(error)),
        }
    }

    async fn run_inner(
        &self,
        node_id: NodeId,
        trigger: &str,
    ) -> Result<(SyncRun, Option<SyncError>), SyncError> {
        let lock = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.entry(node_id).or_default().clone()
        };
        let _guard = lock.lock().await;
        let node = match self.store.get_node(node_id).await? {
            Some(node) if node.deleted_at.is_none() => node,
            _ => return Err(SyncError::NotFound(node_id)),
        };
        if node.status != PairingStatus::Paired {
            return Err(SyncError::WrongState(format!(
                "node {node_id} is {}, not paired; structure is pulled only from paired nodes",
                node.status.as_str()
            )));
        }
        let mut run = SyncRun {
            id: self.ids.next_id(),
            node_id,
            kind: SyncKind::Structure,
            shared_module_id: None,
            trigger: trigger.to_owned(),
            status: RunStatus::Running,
            started_at: domain::now(),
            finished_at: None,
            counts: RunCounts::default(),
            error: String::new(),
            owner: self.owner.clone(),
        };
        self.store.insert_sync_run(&run).await?;
        self.store
            .set_sync_state(node_id, SyncKind::Structure, SyncStatus::Syncing, None, "")
            .await?;
        let outcome = self.pull(&node, &mut run.counts).await;
        run.finished_at = Some(domain::now());
        match outcome {
            Ok(()) => {
                run.status = RunStatus::Succeeded;
                self.store.finish_sync_run(&run).await?;
                self.store
                    .set_sync_state(
                        node_id,
                        SyncKind::Structure,
                        SyncStatus::Synced,
                        run.finished_at,
                        "",
                    )
                    .await?;
                tracing::info!(node_id = %node_id, kind = "structure", created = run.counts.created, updated = run.counts.updated, deleted = run.counts.deleted, pages = run.counts.pages, duration_ms = run_ms(&run), "sync run finished");
                if let Some(live) = &self.live {
                    live.learn_capabilities(&node).await;
                }
                Ok((run, None))
            }
            Err(error) => {
                run.status = RunStatus::Failed;
                run.error = error.to_string();
                let down = super::runs::store_failed(&error);
                bounded_if_down(down, self.store.finish_sync_run(&run)).await?;
                bounded_if_down(
                    down,
                    self.store.set_sync_state(
                        node_id,
                        SyncKind::Structure,
                        SyncStatus::Failed,
                        None,
                        &run.error,
                    ),
                )
                .await?;
                let event = audit::event(
                    &self.ids,
                    &Actor::system(),
                    "sync.failed",
                    AuditResult::Failed,
                    Some(node_id),
                    "structure",
                    serde_json::json!({ "error": run.error }),
                );
                let _ = bounded_if_down(down, self.store.append_audit(&event)).await;
                tracing::warn!(node_id = %node_id, kind = "structure", error = %error, pages = run.counts.pages, duration_ms = run_ms(&run), "sync run failed");
                Ok((run, Some(error)))
            }
        }
    }

    async fn pull(&self, node: &Node, counts: &mut RunCounts) -> Result<(), SyncError> {
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
        let mut remote: Vec<RemoteModule> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        // The highest module id of the pages so far.
        let mut highest: Option<Id> = None;
        loop {
            let page = (|| {
                self.peer.structure_page(
                    &node.base_url,
                    shared_id,
                    &token,
                    self.page_size,
                    cursor.as_deref(),
                )
            })
            .retry(super::ports::page_retry())
            .when(super::ports::retry_page)
            .adjust(super::ports::page_wait)
            .await?;
            counts.pages += 1;
            if page.next_cursor.is_some() && page.modules.is_empty() {
                // No origin sends a next page after an empty one: a loop
                // with fresh cursors, which the seen set cannot catch.
                return Err(SyncError::Protocol(
                    "the origin sent a page cursor but no module on the page".into(),
                ));
            }
            // Corteza and fedsync both page by module id: a page that goes
            // back is a loop, however fresh its cursor (the seen set cannot
            // tell), and would only pile up copies.
            let lowest = page.modules.iter().map(|m| m.external_id).min();
            if let (Some(high), Some(low)) = (highest, lowest)
                && low <= high
            {
                return Err(SyncError::Protocol(format!(
                    "the origin went back from module {high} to {low}: its page cursor loops (origins page by module id)"
                )));
            }
            highest = highest.max(page.modules.iter().map(|m| m.external_id).max());
            remote.extend(page.modules);
            match page.next_cursor {
                None => break,
                Some(next) => {
                    if !seen.insert(next.clone()) {
                        return Err(SyncError::Protocol(
                            "the origin sent the same page cursor twice".into(),
                        ));
                    }
                    if counts.pages >= MAX_PAGES {
                        return Err(SyncError::Protocol(format!(
                            "the origin sent more than {MAX_PAGES} pages"
                        )));
                    }
                    cursor = Some(next);
                }
            }
        }
        let (change, broken) = self.reconcile(node, remote, counts).await?;
        self.store.apply_structure_change(&change).await?;
        if let Some(notices) = &self.notices {
            for (module, reason) in broken {
                notices
                    .post(super::Event::MappingBroken {
                        node: node.clone(),
                        module,
                        reason,
                    })
                    .await;
            }
        }
        Ok(())
    }

    /// Compares the complete listing with what we hold.
    async fn reconcile(
        &self,
        node: &Node,
        remote: Vec<RemoteModule>,
        counts: &mut RunCounts,
    ) -> Result<(StructureChange, Vec<(String, String)>), SyncError> {
        let now = domain::now();
        let held = self.store.list_shared_modules(node.id, true).await?;
        let mut by_external: HashMap<Id, SharedModule> = held
            .into_iter()
            .map(|m| (m.external_module_id, m))
            .collect();
        let mut change = StructureChange::default();
        let mut listed = HashSet::new();
        let mut current: Vec<SharedModule> = Vec::new();
        for r in remote {
            if !listed.insert(r.external_id) {
                continue;
            }
            let deleted_at = r.deleted.then_some(now);
            match by_external.remove(&r.external_id) {
                Some(existing) => {
                    let mut next = existing.clone();
                    next.handle = r.handle;
                    next.name = r.name;
                    next.fields = r.fields;
                    next.origin_module_id = r.compose_module_id.or(existing.origin_module_id);
                    next.origin_namespace_id =
                        r.compose_namespace_id.or(existing.origin_namespace_id);
                    next.deleted_at = if r.deleted {
                        existing.deleted_at.or(deleted_at)
                    } else {
                        None
                    };
                    if next != existing {
                        next.updated_at = now;
                        if r.deleted && existing.deleted_at.is_none() {
                            counts.deleted += 1;
                        } else if !r.deleted {
                            counts.updated += 1;
                        }
                        change.upsert_shared.push(next.clone());
                    }
                    current.push(next);
                }
                None if r.deleted => {}
                None => {
                    let created = SharedModule {
                        id: self.ids.next_id(),
                        node_id: node.id,
                        external_module_id: r.external_id,
                        origin_module_id: r.compose_module_id,
                        origin_namespace_id: r.compose_namespace_id,
                        handle: r.handle,
                        name: r.name,
                        fields: r.fields,
                        created_at: now,
                        updated_at: now,
                        deleted_at: None,
                    };
                    counts.created += 1;
                    change.upsert_shared.push(created.clone());
                    current.push(created);
                }
            }
        }
        // What the complete listing no longer has was unexposed (Corteza
        // never says so; fedsync origins send tombstones).
        for (_, mut gone) in by_external {
            if gone.deleted_at.is_none() {
                gone.deleted_at = Some(now);
                gone.updated_at = now;
                counts.deleted += 1;
                change.upsert_shared.push(gone.clone());
            }
            current.push(gone);
        }
        let (statuses, broken) = self.mapping_status(node.id, &current, now).await?;
        change.mapping_status = statuses;
        Ok((change, broken))
    }

    /// Mappings whose status changes with the new structures, and the
    /// (shared module handle, reason) of those that break now.
    #[allow(clippy::type_complexity)]
    async fn mapping_status(
        &self,
        node_id: NodeId,
        shared: &[SharedModule],
        now: Timestamp,
    ) -> Result<
        (
            Vec<(Id, MappingStatus, String, Timestamp)>,
            Vec<(String, String)>,
        ),
        SyncError,
    > {
        let mut changes = Vec::new();
        let mut broken = Vec::new();
        for mapping in self.store.list_mappings(node_id).await? {
            let Some(module) = shared.iter().find(|m| m.id == mapping.shared_module_id) else {
                continue;
            };
            let local = self
                .store
                .get_local_module(mapping.local_module_id)
                .await?
                .filter(|m| m.deleted_at.is_none());
            let (status, reason) = match check_mapping(&mapping.fields, module, local.as_ref()) {
                Ok(()) => (MappingStatus::Ok, String::new()),
                Err(reason) => (MappingStatus::Broken, reason),
            };
            if status == MappingStatus::Broken && mapping.status == MappingStatus::Ok {
                broken.push((module.handle.clone(), reason.clone()));
            }
            if status != mapping.status || reason != mapping.status_reason {
                changes.push((mapping.id, status, reason, now));
            }
        }
        Ok((changes, broken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_payloads_are_compact() {
        let payload = serde_json::to_string(&CursorPayload {
            n: 523615093115650149,
            a: 912285089520418816,
            s: None,
        })
        .unwrap();
        assert_eq!(
            payload,
            r#"{"n":523615093115650149,"a":912285089520418816}"#
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn cursor() -> impl Strategy<Value = CursorPayload> {
            (
                any::<u64>(),
                any::<u64>(),
                proptest::option::of(any::<i64>()),
            )
                .prop_map(|(n, a, s)| CursorPayload { n, a, s })
        }

        crate::sync::sealed_cursor_properties!(crate::sync::data::open_cursor);
    }
}
