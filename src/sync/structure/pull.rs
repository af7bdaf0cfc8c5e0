//! The destination side of structure sync: a pull of a peer's exposed
//! modules, every page read first (loops cut off), then created, changed
//! and removed shared modules and the status of every mapping they touch
//! written in one transaction, and the run recorded.

use std::collections::{HashMap, HashSet};

use backon::Retryable;

use super::{MAX_PAGES, StructureSync, SyncError};
use crate::domain::{
    self, Actor, AuditResult, Id, MappingStatus, Node, NodeId, PairingStatus, RunCounts, RunStatus,
    SharedModule, SyncKind, SyncRun, SyncStatus, Timestamp,
};
use crate::mapping::check_mapping;
use crate::store::StructureChange;
use crate::sync::audit;
use crate::sync::ports::RemoteModule;
use crate::sync::runs::{bounded_if_down, run_ms};

impl StructureSync {
    pub(super) async fn run_inner(
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
                let down = crate::sync::runs::store_failed(&error);
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
            .retry(crate::sync::ports::page_retry())
            .when(crate::sync::ports::retry_page)
            .adjust(crate::sync::ports::page_wait)
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
                    .post(crate::sync::Event::MappingBroken {
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
