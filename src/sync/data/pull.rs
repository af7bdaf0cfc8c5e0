//! The destination's runs: every mapped shared module of a node, or one
//! (a job's attempt), each a run recorded with its counts, pulling pages
//! from the origin through its cursor.

use super::DataSync;
use super::fetch::PageSource;
use super::fields::usable_fields;
use super::pages::Pull;

use crate::domain::{
    self, Actor, AuditResult, Id, ModuleMapping, Node, NodeId, PairingStatus, PeerKind, RunCounts,
    RunStatus, SyncKind, SyncRun, SyncStatus,
};
use crate::sync::audit;
use crate::sync::ports::RecordsRequest;
use crate::sync::runs::{bounded_if_down, run_ms, store_failed};
use crate::sync::structure::SyncError;

impl DataSync {
    /// Pulls every mapped shared module of the node; one run each.
    pub async fn run_node(
        &self,
        node_id: NodeId,
        trigger: &str,
    ) -> Result<Vec<SyncRun>, SyncError> {
        let runs = self.run_modules(node_id, None, trigger, false).await?;
        Ok(runs.into_iter().map(|(run, _)| run).collect())
    }

    /// Pulls one mapped shared module (an attempt of its job); the run, and
    /// why it failed when it did. `full` (a reset): forget where the pull
    /// stands, pull everything again, and remove local copies of records
    /// the origin no longer has.
    pub async fn run_shared(
        &self,
        node_id: NodeId,
        shared_module_id: Id,
        trigger: &str,
        full: bool,
    ) -> Result<(SyncRun, Option<SyncError>), SyncError> {
        if full {
            self.store
                .delete_sync_cursors(node_id, Some(shared_module_id))
                .await?;
        }
        let mut runs = self
            .run_modules(node_id, Some(shared_module_id), trigger, full)
            .await?;
        Ok(runs.remove(0))
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
        let ours = node.peer_kind == PeerKind::Fedsync;
        let start = self.store.get_sync_cursor(node.id, shared.id).await?;
        let cursor = start
            .as_ref()
            .map(|c| c.cursor.clone())
            .filter(|c| ours && !c.is_empty());
        let previous_watermark = start.as_ref().map(|c| c.last_sync).unwrap_or(0);
        let source = PageSource {
            peer: self.peer.clone(),
            base_url: node.base_url.clone(),
            shared_node_id: node.shared_node_id.unwrap_or(node.id),
            exposed_module_id: shared.external_module_id,
            token: std::sync::Arc::new(token),
        };
        let first = source
            .fetch(RecordsRequest {
                limit: self.page_size,
                cursor: cursor.clone(),
                last_sync: (!ours && previous_watermark > 0).then_some(previous_watermark),
                include_total: ours,
            })
            .await?;
        let pull = Pull {
            node,
            shared: &shared,
            local: &local,
            usable: &usable,
            source,
            ours,
            full,
            cursor,
            watermark: previous_watermark,
        };
        self.pull_pages(pull, first, run, total).await?;
        if full {
            self.remove_unseen(node, &shared, run).await?;
        }
        Ok(())
    }
}
