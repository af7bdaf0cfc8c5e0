//! `SyncService`: run a sync now, see how syncs went.

use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::node::writer;
use super::proto::{self, v1};
use super::server::AdminState;
use super::status::{from_catalog, from_store, from_sync};
use crate::domain::{Id, MappingStatus, NodeId, SyncKind};

/// `sync now`: the node's runs of `kind`, finished (failed ones included).
async fn sync_now_runs(
    state: &AdminState,
    node_id: NodeId,
    kind: SyncKind,
) -> Result<Vec<crate::domain::SyncRun>, Status> {
    // Through the node's jobs, under their leases, so a manual run never
    // overlaps a scheduled one (in this process or another replica).
    if let Some(attempts) = state
        .scheduler
        .run_now(node_id, kind, None)
        .await
        .map_err(from_store)?
    {
        let mut runs = Vec::new();
        for attempt in attempts {
            match (attempt.run, attempt.verdict) {
                (Some(run), _) => runs.push(run),
                (
                    None,
                    crate::scheduler::Verdict::Stop(why)
                    | crate::scheduler::Verdict::Retry(why)
                    | crate::scheduler::Verdict::RetryAfter(why, _),
                ) => {
                    return Err(Status::failed_precondition(why));
                }
                (None, crate::scheduler::Verdict::Succeeded) => {}
            }
        }
        if !runs.is_empty() {
            return Ok(runs);
        }
    }
    let runs = match kind {
        SyncKind::Structure => match state.structure.run(node_id, "manual").await {
            Ok(run) => vec![run],
            // The run was recorded as failed; hand back the record.
            Err(
                crate::sync::structure::SyncError::Peer(_)
                | crate::sync::structure::SyncError::Protocol(_),
            ) => {
                let runs = state
                    .store
                    .list_sync_runs(node_id, 1)
                    .await
                    .map_err(from_store)?;
                if runs.is_empty() {
                    return Err(Status::internal("the run was not recorded"));
                }
                runs
            }
            Err(e) => return Err(from_sync(e)),
        },
        SyncKind::Data => state
            .data
            .run_node(node_id, "manual")
            .await
            .map_err(from_sync)?,
    };
    Ok(runs)
}

/// The node and kind a `SyncNowRequest` names.
fn sync_target(r: &v1::SyncNowRequest) -> Result<(NodeId, SyncKind), Status> {
    let node_id = NodeId::from_u64(r.node_id)
        .ok_or_else(|| Status::invalid_argument("node_id is required"))?;
    let kind = SyncKind::parse(&r.kind).map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok((node_id, kind))
}

pub struct SyncApi {
    state: AdminState,
}

impl SyncApi {
    pub fn new(state: AdminState) -> SyncApi {
        SyncApi { state }
    }
}

#[tonic::async_trait]
impl v1::sync_service_server::SyncService for SyncApi {
    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn sync_now(
        &self,
        request: Request<v1::SyncNowRequest>,
    ) -> Result<Response<v1::SyncNowResponse>, Status> {
        writer(&request)?;
        let (node_id, kind) = sync_target(request.get_ref())?;
        let runs = sync_now_runs(&self.state, node_id, kind).await?;
        Ok(Response::new(v1::SyncNowResponse {
            runs: runs.iter().map(proto::run).collect(),
        }))
    }

    type FollowSyncNowStream = ReceiverStream<Result<v1::SyncProgress, Status>>;

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn follow_sync_now(
        &self,
        request: Request<v1::SyncNowRequest>,
    ) -> Result<Response<Self::FollowSyncNowStream>, Status> {
        writer(&request)?;
        let (node_id, kind) = sync_target(request.get_ref())?;
        // Subscribed before the work starts, so no page goes unseen.
        let mut events = self.state.data.progress().subscribe();
        let state = self.state.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let work = sync_now_runs(&state, node_id, kind);
            tokio::pin!(work);
            let mut watching = true;
            // A slow watcher misses snapshots; the sync never waits for it.
            let forward = |p: crate::sync::progress::RunProgress| {
                if p.run.node_id == node_id && p.run.kind == kind {
                    let _ = tx.try_send(Ok(v1::SyncProgress {
                        run: Some(proto::run(&p.run)),
                        total: p.total,
                        done: None,
                    }));
                }
            };
            let result = loop {
                tokio::select! {
                    biased;
                    event = events.recv(), if watching => match event {
                        Ok(p) => forward(p),
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => watching = false,
                    },
                    result = &mut work => break result,
                }
            };
            // The work may publish its last snapshots and end within one
            // poll (its store calls answered at once): they are in the
            // channel already, and go before the result.
            loop {
                match events.try_recv() {
                    Ok(p) => forward(p),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
            let last = result.map(|runs| v1::SyncProgress {
                run: None,
                total: None,
                done: Some(v1::SyncNowResponse {
                    runs: runs.iter().map(proto::run).collect(),
                }),
            });
            // The sync is done whether or not the watcher is still there.
            let _ = tx.send(last).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn reset_sync(
        &self,
        request: Request<v1::ResetSyncRequest>,
    ) -> Result<Response<v1::SyncNowResponse>, Status> {
        writer(&request)?;
        let r = request.into_inner();
        let node_id = NodeId::from_u64(r.node_id)
            .ok_or_else(|| Status::invalid_argument("node_id is required"))?;
        let shared = match r.shared.trim() {
            "" => None,
            key => Some(
                self.state
                    .catalog
                    .shared(&node_id.to_string(), key)
                    .await
                    .map_err(from_catalog)?
                    .id,
            ),
        };
        let runs = self
            .state
            .data
            .reset(node_id, shared, "reset")
            .await
            .map_err(from_sync)?;
        Ok(Response::new(v1::SyncNowResponse {
            runs: runs.iter().map(proto::run).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_run_errors(
        &self,
        request: Request<v1::ListRunErrorsRequest>,
    ) -> Result<Response<v1::ListRunErrorsResponse>, Status> {
        let run_id = Id::new(request.get_ref().run_id)
            .ok_or_else(|| Status::invalid_argument("run_id is required"))?;
        let errors = self
            .state
            .store
            .list_run_errors(run_id)
            .await
            .map_err(from_store)?;
        Ok(Response::new(v1::ListRunErrorsResponse {
            errors: errors
                .into_iter()
                .map(|e| v1::RunError {
                    seq: e.seq,
                    origin_record_id: e.origin_record_id.map(|i| i.get()).unwrap_or(0),
                    message: e.message,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_sync_status(
        &self,
        request: Request<v1::GetSyncStatusRequest>,
    ) -> Result<Response<v1::GetSyncStatusResponse>, Status> {
        let store = &self.state.store;
        if let Some(id) = NodeId::from_u64(request.get_ref().node_id) {
            let node = store
                .get_node(id)
                .await
                .map_err(from_store)?
                .filter(|n| n.deleted_at.is_none())
                .ok_or_else(|| Status::not_found(format!("node {id} does not exist")))?;
            return Ok(Response::new(v1::GetSyncStatusResponse {
                nodes: vec![self.node_status(&node).await?],
            }));
        }
        // Every node: two statements whatever their number, at once (a
        // status page polled during a busy round must stay quick).
        let (snapshot, broken) =
            tokio::try_join!(store.status_snapshot(), store.list_broken_mappings())
                .map_err(from_store)?;
        let mut problems = std::collections::HashMap::<NodeId, Vec<_>>::new();
        for b in broken {
            problems
                .entry(b.node_id)
                .or_default()
                .push(v1::MappingProblem {
                    shared_module_id: b.shared_module_id.get(),
                    shared_handle: b.shared_handle,
                    reason: b.reason,
                });
        }
        let mut jobs = std::collections::HashMap::<NodeId, Vec<_>>::new();
        for job in snapshot.jobs {
            jobs.entry(job.node_id).or_default().push(job);
        }
        let out = snapshot
            .nodes
            .into_iter()
            .map(|(node, structure, data)| {
                status_view(
                    &node,
                    problems.remove(&node.id).unwrap_or_default(),
                    (structure, data),
                    jobs.remove(&node.id).unwrap_or_default(),
                )
            })
            .collect();
        Ok(Response::new(v1::GetSyncStatusResponse { nodes: out }))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn set_schedule(
        &self,
        request: Request<v1::SetScheduleRequest>,
    ) -> Result<Response<v1::NodeSyncStatus>, Status> {
        writer(&request)?;
        let r = request.into_inner();
        let node = self.live_node(r.node_id).await?;
        for (flag, value) in [("--structure", &r.structure), ("--data", &r.data)] {
            if let Some(text) = value.as_deref().filter(|t| !t.trim().is_empty()) {
                crate::scheduler::Schedule::parse(text)
                    .map_err(|e| Status::invalid_argument(format!("{flag}: {e}")))?;
            }
        }
        let store = &self.state.store;
        let (structure, data) = store.node_schedule(node.id).await.map_err(from_store)?;
        store
            .set_node_schedule(
                node.id,
                r.structure.as_deref().map(str::trim).unwrap_or(&structure),
                r.data.as_deref().map(str::trim).unwrap_or(&data),
            )
            .await
            .map_err(from_store)?;
        self.state.scheduler.reconcile().await.map_err(from_store)?;
        self.state.scheduler.wake();
        Ok(Response::new(self.node_status(&node).await?))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn set_paused(
        &self,
        request: Request<v1::SetPausedRequest>,
    ) -> Result<Response<v1::NodeSyncStatus>, Status> {
        writer(&request)?;
        let r = request.into_inner();
        let node = self.live_node(r.node_id).await?;
        let store = &self.state.store;
        store
            .set_node_paused(node.id, r.paused)
            .await
            .map_err(from_store)?;
        if !r.paused {
            let now = self.state.scheduler.now();
            for mut job in store.list_jobs(Some(node.id)).await.map_err(from_store)? {
                if job.state == crate::domain::JobState::Stopped {
                    job.state = crate::domain::JobState::Idle;
                    job.stop_reason.clear();
                    job.next_run_at = now;
                    job.updated_at = now;
                    store.update_job(&job, None).await.map_err(from_store)?;
                }
            }
        }
        self.state.scheduler.wake();
        let node = self.live_node(r.node_id).await?;
        Ok(Response::new(self.node_status(&node).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_sync_runs(
        &self,
        request: Request<v1::ListSyncRunsRequest>,
    ) -> Result<Response<v1::ListSyncRunsResponse>, Status> {
        let r = request.into_inner();
        let node_id = NodeId::from_u64(r.node_id)
            .ok_or_else(|| Status::invalid_argument("node_id is required"))?;
        let runs = self
            .state
            .store
            .list_sync_runs(node_id, r.limit.min(1000))
            .await
            .map_err(from_store)?;
        Ok(Response::new(v1::ListSyncRunsResponse {
            runs: runs.iter().map(proto::run).collect(),
        }))
    }
}

impl SyncApi {
    /// One node's status: its broken mappings (a query each, for the
    /// handle), schedules and jobs.
    async fn node_status(&self, node: &crate::domain::Node) -> Result<v1::NodeSyncStatus, Status> {
        let store = &self.state.store;
        let mut problems = Vec::new();
        for mapping in store.list_mappings(node.id).await.map_err(from_store)? {
            if mapping.status == MappingStatus::Broken {
                let handle = store
                    .get_shared_module(mapping.shared_module_id)
                    .await
                    .map_err(from_store)?
                    .map(|m| m.handle)
                    .unwrap_or_default();
                problems.push(v1::MappingProblem {
                    shared_module_id: mapping.shared_module_id.get(),
                    shared_handle: handle,
                    reason: mapping.status_reason.clone(),
                });
            }
        }
        let schedule = store.node_schedule(node.id).await.map_err(from_store)?;
        let jobs = store.list_jobs(Some(node.id)).await.map_err(from_store)?;
        Ok(status_view(node, problems, schedule, jobs))
    }

    async fn live_node(&self, id: u64) -> Result<crate::domain::Node, Status> {
        let node_id =
            NodeId::from_u64(id).ok_or_else(|| Status::invalid_argument("node_id is required"))?;
        self.state
            .store
            .get_node(node_id)
            .await
            .map_err(from_store)?
            .filter(|n| n.deleted_at.is_none())
            .ok_or_else(|| Status::not_found(format!("node {node_id} does not exist")))
    }
}

/// A node's status as the admin API shows it.
fn status_view(
    node: &crate::domain::Node,
    problems: Vec<v1::MappingProblem>,
    (schedule_structure, schedule_data): (String, String),
    jobs: Vec<crate::domain::SyncJob>,
) -> v1::NodeSyncStatus {
    let full = proto::node(node);
    v1::NodeSyncStatus {
        node_id: full.id,
        name: full.name,
        status: full.status,
        structure_status: full.structure_status,
        structure_synced_at: full.structure_synced_at,
        structure_error: full.structure_error,
        data_status: full.data_status,
        data_synced_at: full.data_synced_at,
        data_error: full.data_error,
        problems,
        paused: node.paused,
        schedule_structure,
        schedule_data,
        jobs: jobs.iter().map(proto::job).collect(),
    }
}
